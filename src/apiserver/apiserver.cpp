// Wiring of the API server (include/orch/apiserver.h): schemas, resources, REST storage,
// admission, watch cache, handler and the HTTPS front, started in that order.
#include "orch/apiserver.h"

#include <fmt/format.h>

#include "admission.h"
#include "api_handler.h"
#include "crd.h"
#include "encryption.h"
#include "http_server.h"
#include "inprocess_client.h"
#include "manifests.h"
#include "metrics.h"
#include "node_join.h"
#include "openapi_service.h"
#include "orch/files.h"
#include "orch/log.h"
#include "priority.h"
#include "schema_loader.h"
#include "service_accounts.h"
#include "service_allocator.h"

namespace orch {
namespace {

using api::json;

class ApiServerImpl : public ApiServer {
 public:
  ~ApiServerImpl() override { Stop(); }

  Status Init(const ApiServerOptions& options, Store& raw_store) {
    auto schemas = api::LoadBuiltinSchemas();
    if (!schemas.ok()) return Internal("built-in schemas: " + schemas.status().message());
    schemas_ = std::move(*schemas);
    registry_ = std::make_unique<api::ResourceRegistry>(api::BuiltinResources(schemas_.get()));
    store_ = api::InstrumentStore(raw_store, metrics_);

    auto box = api::SecretBox::Open(options.encryption_key_file);
    if (!box.ok()) return box.status();
    secrets_ = std::make_unique<api::SecretBox>(std::move(*box));

    auto resources = registry_->Current();
    namespace_lifecycle_ = std::make_unique<api::NamespaceLifecycle>(
        *store_, *resources->Find("", "v1", "namespaces"));
    auto cidr = Cidr::Parse(options.service_cidr);
    if (!cidr.ok()) return InvalidArgument("service CIDR: " + cidr.status().message());
    service_allocator_ = std::make_unique<api::ServiceAllocator>(*store_, *cidr);
    priority_ = std::make_unique<api::PriorityAdmission>(
        *store_, *resources->Find("scheduling.k8s.io", "v1", "priorityclasses"));
    std::optional<satoken::SigningKey> sa_key;
    if (!options.service_account_key_file.empty()) {
      auto key = satoken::SigningKey::LoadOrCreate(options.service_account_key_file);
      if (!key.ok()) return key.status();
      sa_key = std::move(*key);
      service_account_admission_ = std::make_unique<api::ServiceAccountAdmission>(
          *store_, *resources->Find("", "v1", "serviceaccounts"));
    }
    std::vector<api::AdmissionPlugin*> plugins = {namespace_lifecycle_.get()};
    if (service_account_admission_) plugins.push_back(service_account_admission_.get());
    plugins.insert(plugins.end(),
                   {service_allocator_.get(), priority_.get(), &default_toleration_seconds_});
    if (const api::ResourceType* classes =
            resources->Find("networking.k8s.io", "v1", "ingressclasses")) {
      default_ingress_class_ = std::make_unique<api::DefaultIngressClass>(*store_, *classes);
      plugins.push_back(default_ingress_class_.get());
    }
    rest_ = std::make_unique<api::Rest>(*store_, secrets_.get(), std::move(plugins));
    if (sa_key) {
      api::ServiceAccountTokenOptions token_options;
      token_options.issuer = options.service_account_issuer;
      token_options.audiences = options.api_audiences;
      if (token_options.audiences.empty()) token_options.audiences = {token_options.issuer};
      service_account_tokens_ = std::make_unique<api::ServiceAccountTokens>(
          *rest_, resources, std::move(*sa_key), std::move(token_options));
      authenticator_.AddTokenAuthenticator(service_account_tokens_.get());
    }
    if (Status s = Bootstrap(options, *cidr); !s.ok()) return s;

    auto cache = api::WatchCache::Start(*rest_, *registry_);
    if (!cache.ok()) return cache.status();
    cache_ = std::move(*cache);
    crds_ = std::make_unique<api::CrdController>(*registry_, registry_->Current(), schemas_.get(),
                                                 *rest_);
    if (Status s = crds_->Start(*cache_); !s.ok()) return s;

    for (const auto& t : options.tokens) {
      authenticator_.AddToken(t.token, {t.user, t.groups});
    }
    if (!options.ca_key_file.empty()) {
      auto signer = NewNodeSigner(options);
      if (!signer.ok()) return signer.status();
      node_signer_ = std::move(*signer);
    }
    openapi_ = api::NewOpenApiService(*registry_, schemas_.get());
    api::ApiHandlerOptions handler_options;
    handler_options.server_address = options.advertise_address + ":" + std::to_string(options.port);
    handler_options.ca_bundle_pem = options.ca_bundle_pem;
    handler_options.schemas = schemas_.get();
    handler_options.node_signer = node_signer_.get();
    handler_options.server_join = options.server_join;
    node_links_ = api::NodeLinks::Create();
    pod_streams_ = std::make_unique<api::PodStreams>(*rest_, *node_links_);
    handler_options.node_links = node_links_.get();
    handler_options.pod_streams = pod_streams_.get();
    handler_options.service_account_tokens = service_account_tokens_.get();
    handler_ =
        std::make_unique<api::ApiHandler>(handler_options, *registry_, *rest_, *cache_,
                                          authenticator_, authorizer_, openapi_.get(), metrics_);
    api::HttpServerOptions http;
    http.bind_address = options.bind_address;
    http.port = options.port;
    http.cert_file = options.cert_file;
    http.key_file = options.key_file;
    http.client_ca_file = options.client_ca_file;
    http.worker_threads = options.worker_threads;
    auto server = api::HttpServer::Start(http, *handler_);
    if (!server.ok()) return server.status();
    http_ = std::move(*server);
    handler_->SetReady(true);
    if (!options.manifests_dir.empty()) {
      manifests_client_ = NewClient("system:orch:manifests", {"system:masters"}, "orch-manifests");
      manifests_ = std::make_unique<api::ManifestDeployer>(options.manifests_dir,
                                                           *manifests_client_, *registry_);
      manifests_->Start();
    }
    log::Info("apiserver", "serving on https://{}:{}", options.bind_address, http_->port());
    return Status::Ok();
  }

  int port() const override { return http_ ? http_->port() : 0; }

  std::unique_ptr<ApiClient> NewClient(const std::string& user,
                                       const std::vector<std::string>& groups,
                                       const std::string& field_manager) override {
    return api::NewInProcessClient(*handler_, {user, groups}, field_manager);
  }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    if (handler_) handler_->SetReady(false);
    if (manifests_) manifests_->Stop();
    manifests_.reset();
    manifests_client_.reset();
    if (crds_) crds_->Stop();
    if (cache_) cache_->Stop();  // ends watches so streams close before the listener goes
    if (node_links_) node_links_->Stop();
    if (http_) http_->Stop();
  }

 private:
  // The signer of joining nodes' certificates; a trial signature now makes a CA that cannot
  // sign fail the start rather than every join.
  static Result<std::unique_ptr<api::NodeCertificateSigner>> NewNodeSigner(
      const ApiServerOptions& options) {
    auto cert = ReadFileToString(options.client_ca_file);
    if (!cert.ok()) return cert.status();
    auto key = ReadFileToString(options.ca_key_file);
    if (!key.ok()) return key.status();
    pki::Credential ca{*cert, *key};
    auto trial = pki::CreateSigningRequest("trial");
    if (!trial.ok()) return trial.status();
    pki::CertificateRequest subject;
    subject.common_name = "trial";
    subject.client = true;
    if (auto signed_cert = pki::SignRequest(ca, trial->cert_pem, subject); !signed_cert.ok()) {
      return InvalidArgument(fmt::format("the CA in {} and {} cannot sign node certificates: {}",
                                         options.client_ca_file, options.ca_key_file,
                                         signed_cert.status().message()));
    }
    return std::make_unique<api::NodeCertificateSigner>(
        std::move(ca), options.ca_bundle_pem.empty() ? *cert : options.ca_bundle_pem,
        options.join_tokens, options.cluster_settings_json);
  }

  // What every cluster has: its namespaces, and the `kubernetes` Service on the first service
  // address pointing at this API server. Allocations without a Service are released.
  Status Bootstrap(const ApiServerOptions& options, const Cidr& service_cidr) {
    auto resources = registry_->Current();
    const api::ResourceType* namespaces = resources->Find("", "v1", "namespaces");
    const api::ResourceType* services = resources->Find("", "v1", "services");
    const api::ResourceType* endpoints = resources->Find("", "v1", "endpoints");
    for (const char* name : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
      api::WriteOptions write;
      write.field_manager = "orch";
      auto created = rest_->Create(*namespaces, "", ns, write);
      if (!created.ok() && created.error().code != 409) {
        return Unavailable("create namespace " + std::string(name) + ": " +
                           created.error().message);
      }
    }
    // The `default` ServiceAccounts of the system namespaces exist before any pod is admitted
    // (the serviceaccount controller makes the others, and these again if deleted).
    if (service_account_admission_) {
      const api::ResourceType* accounts = resources->Find("", "v1", "serviceaccounts");
      for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
        json sa = {{"apiVersion", "v1"},
                   {"kind", "ServiceAccount"},
                   {"metadata", {{"name", "default"}, {"namespace", ns}}}};
        if (rest_->Get(*accounts, ns, "default").ok()) continue;
        api::WriteOptions write;
        write.field_manager = "orch";
        auto created = rest_->Create(*accounts, ns, sa, write);
        if (!created.ok() && created.error().code != 409) {
          return Unavailable(
              fmt::format("create service account {}/default: {}", ns, created.error().message));
        }
      }
    }
    const api::ResourceType* priority_classes =
        resources->Find("scheduling.k8s.io", "v1", "priorityclasses");
    for (const json& pc : api::SystemPriorityClasses()) {
      api::WriteOptions write;
      write.field_manager = "orch";
      auto created = rest_->Create(*priority_classes, "", pc, write);
      if (!created.ok() && created.error().code != 409) {
        return Unavailable("create priority class " + api::Name(pc) + ": " +
                           created.error().message);
      }
    }
    auto listed = rest_->List(*services, "", {});
    if (!listed.ok()) return Unavailable("list services: " + listed.error().message);
    service_allocator_->Repair(listed->items);

    api::WriteOptions write;
    write.field_manager = "orch";
    auto first_ip = service_cidr.AddressAt(1);
    if (!first_ip.ok()) return first_ip.status();
    json kubernetes = {{"apiVersion", "v1"},
                       {"kind", "Service"},
                       {"metadata",
                        {{"name", "kubernetes"},
                         {"namespace", "default"},
                         {"labels", {{"component", "apiserver"}, {"provider", "kubernetes"}}}}},
                       {"spec",
                        {{"type", "ClusterIP"},
                         {"clusterIP", first_ip->ToString()},
                         {"ports",
                          {{{"name", "https"},
                            {"port", 443},
                            {"protocol", "TCP"},
                            {"targetPort", options.port}}}}}}};
    if (!rest_->Get(*services, "default", "kubernetes").ok()) {
      auto created = rest_->Create(*services, "default", kubernetes, write);
      if (!created.ok() && created.error().code != 409) {
        return Unavailable("create the kubernetes service: " + created.error().message);
      }
    }
    json address = {{"ip", options.advertise_address}};
    json subsets = {
        {{"addresses", {address}},
         {"ports", {{{"name", "https"}, {"port", options.port}, {"protocol", "TCP"}}}}}};
    json ep = {{"apiVersion", "v1"},
               {"kind", "Endpoints"},
               {"metadata", {{"name", "kubernetes"}, {"namespace", "default"}}},
               {"subsets", subsets}};
    auto existing = rest_->Get(*endpoints, "default", "kubernetes");
    if (!existing.ok()) {
      auto made = rest_->Create(*endpoints, "default", ep, write);
      if (!made.ok() && made.error().code != 409) {
        return Unavailable("create the kubernetes endpoints: " + made.error().message);
      }
    } else if ((*existing)["subsets"] != subsets) {
      auto updated = rest_->Update(*endpoints, "default", "kubernetes", ep, "", write);
      if (!updated.ok())
        return Unavailable("update the kubernetes endpoints: " + updated.error().message);
    }
    return EnsureClusterDnsService(options, *services, write);
  }

  // The `kube-dns` Service that pods' resolv.conf names. It has no selector and no endpoints:
  // every agent serves DNS itself and redirects the ClusterIP to its own listener
  // (network/node_network.cpp); the Service reserves the address and tells clients it exists.
  // With `--disable dns` the one orch made is removed, as k3s removes a disabled add-on; a
  // kube-dns Service of the user's own (their CoreDNS, without orch's annotation) is left alone.
  Status EnsureClusterDnsService(const ApiServerOptions& options, const api::ResourceType& services,
                                 const api::WriteOptions& write) {
    static constexpr const char* kOwner = "orch.io/cluster-dns";
    auto existing = rest_->Get(services, "kube-system", "kube-dns");
    if (options.cluster_dns.empty()) {
      if (!existing.ok() || !(*existing)["metadata"].contains("annotations") ||
          !(*existing)["metadata"]["annotations"].contains(kOwner)) {
        return Status::Ok();
      }
      auto deleted = rest_->Delete(services, "kube-system", "kube-dns", {});
      if (!deleted.ok() && deleted.error().code != 404) {
        return Unavailable("remove the kube-dns service of the disabled cluster DNS: " +
                           deleted.error().message);
      }
      return Status::Ok();
    }
    if (existing.ok()) return Status::Ok();
    json ports = json::array();
    for (const auto& [name, protocol] : {std::pair{"dns", "UDP"}, {"dns-tcp", "TCP"}}) {
      ports.push_back({{"name", name}, {"port", 53}, {"protocol", protocol}, {"targetPort", 53}});
    }
    json kube_dns = {
        {"apiVersion", "v1"},
        {"kind", "Service"},
        {"metadata",
         {{"name", "kube-dns"},
          {"namespace", "kube-system"},
          {"annotations", {{kOwner, "true"}}},
          {"labels",
           {{"k8s-app", "kube-dns"},
            {"kubernetes.io/cluster-service", "true"},
            {"kubernetes.io/name", "CoreDNS"}}}}},
        {"spec", {{"type", "ClusterIP"}, {"clusterIP", options.cluster_dns}, {"ports", ports}}}};
    auto created = rest_->Create(services, "kube-system", kube_dns, write);
    if (!created.ok() && created.error().code != 409) {
      return Unavailable("create the kube-dns service: " + created.error().message);
    }
    return Status::Ok();
  }

  std::unique_ptr<api::SchemaSet> schemas_;
  std::unique_ptr<api::ResourceRegistry> registry_;
  api::Metrics metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<api::SecretBox> secrets_;
  std::unique_ptr<api::NamespaceLifecycle> namespace_lifecycle_;
  std::unique_ptr<api::ServiceAllocator> service_allocator_;
  std::unique_ptr<api::PriorityAdmission> priority_;
  std::unique_ptr<api::ServiceAccountAdmission> service_account_admission_;
  std::unique_ptr<api::ServiceAccountTokens> service_account_tokens_;
  api::DefaultTolerationSeconds default_toleration_seconds_;
  std::unique_ptr<api::DefaultIngressClass> default_ingress_class_;
  std::unique_ptr<api::Rest> rest_;
  std::unique_ptr<api::WatchCache> cache_;
  std::unique_ptr<api::CrdController> crds_;
  api::Authenticator authenticator_;
  api::AllowAllAuthorizer authorizer_;
  std::unique_ptr<api::NodeCertificateSigner> node_signer_;
  std::unique_ptr<api::OpenApiService> openapi_;
  std::unique_ptr<api::NodeLinks> node_links_;
  std::unique_ptr<api::PodStreams> pod_streams_;
  std::unique_ptr<api::ApiHandler> handler_;
  std::unique_ptr<api::HttpServer> http_;
  std::unique_ptr<ApiClient> manifests_client_;  // before manifests_: the deployer uses it
  std::unique_ptr<api::ManifestDeployer> manifests_;
  bool stopped_ = false;
};

}  // namespace

Result<std::unique_ptr<ApiServer>> ApiServer::Start(const ApiServerOptions& options, Store& store) {
  auto server = std::make_unique<ApiServerImpl>();
  if (Status s = server->Init(options, store); !s.ok()) return s;
  return std::unique_ptr<ApiServer>(std::move(server));
}

}  // namespace orch
