// Ingress (orch's Traefik): every node agent runs a reverse proxy on ports 80 and 443 that serves
// the networking.k8s.io/v1 Ingresses of orch's IngressClass, and a controller in the server
// creates that class and writes the nodes' addresses into the Ingresses' status.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "orch/component.h"
#include "orch/controllers.h"
#include "orch/informer.h"

namespace orch {

namespace resources {
inline const ResourceRef kIngressClasses{"networking.k8s.io", "v1", "ingressclasses", false};
}  // namespace resources

// The IngressClass the server creates (default class), and the controller name it carries: the
// proxy serves the Ingresses of every class naming this controller.
inline constexpr char kIngressClassName[] = "orch";
inline constexpr char kIngressControllerName[] = "orch.io/ingress-controller";

struct IngressProxyOptions {
  std::string bind_address;  // "" = every address of the node (IPv6 and IPv4 when possible)
  uint16_t http_port = 80;   // 0: any free port (tests, benchmarks)
  uint16_t https_port = 443;
  int io_threads = 2;  // each runs its own share of the connections; none is per connection
  size_t max_connections = 10000;  // client connections open at once; more are closed at accept
  // Timeouts: reading a request head (and waiting for the next one on a kept-alive connection),
  // connecting to a pod, waiting for a pod's response head, and silence in the middle of a body
  // or of an upgraded (WebSocket) connection.
  std::chrono::seconds request_header_timeout{60};
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds response_header_timeout{60};
  std::chrono::seconds body_idle_timeout{300};
  std::chrono::seconds upgraded_idle_timeout{3600};
};

class IngressProxy : public Component {
 public:
  // The ports actually listened on, 0 while not listening (no IngressClass of orch's exists, or
  // the port is taken). Thread-safe.
  virtual uint16_t http_port() const = 0;
  virtual uint16_t https_port() const = 0;
};

// Start registers handlers on the informers of Ingresses, IngressClasses, Services,
// EndpointSlices and kubernetes.io/tls Secrets of `informers` (before or after the factory
// starts) and starts the I/O threads. Once the informers have synced and an IngressClass names
// kIngressControllerName, the proxy listens on both ports (a taken port is logged and retried
// every 10 s, never fatal); when no such class is left (`--disable ingress`), it stops
// listening. Stop closes every connection and joins the threads; idempotent. `informers` must
// outlive the proxy.
std::unique_ptr<IngressProxy> NewIngressProxy(IngressProxyOptions options,
                                              InformerFactory& informers);

// The server's side, run by the control plane leader. Enabled: creates the IngressClass
// kIngressClassName (default class) unless it exists, and keeps status.loadBalancer.ingress of
// every Ingress the proxy serves equal to the serving nodes' addresses (ExternalIP, else
// InternalIP, of Ready nodes not labelled node.kubernetes.io/exclude-from-external-load-balancers).
// Disabled (`--disable ingress`): only deletes that IngressClass if it names orch's controller,
// which makes every node's proxy stop listening.
std::unique_ptr<Component> NewIngressController(ControllerContext& context, bool enabled);

}  // namespace orch
