// Node IPAM: gives every Node a pod CIDR (spec.podCIDR, spec.podCIDRs) carved from
// --cluster-cidr, like kube-controller-manager's range allocator. Nodes keep theirs for life;
// the range of a deleted node is free again once the node is gone from the API.
#include "node_ipam.h"

#include <mutex>
#include <set>

#include "orch/log.h"
#include "orch/net.h"
#include "orch/work_queue.h"

namespace orch {
namespace {

constexpr std::string_view kName = "nodeipam";

class NodeIpamController : public Component {
 public:
  explicit NodeIpamController(ControllerContext& context) : context_(context) {}

  std::string_view Name() const override { return kName; }

  Status Start() override {
    auto cidr = Cidr::Parse(context_.cluster_cidr);
    if (!cidr.ok()) return InvalidArgument("cluster CIDR: " + cidr.status().message());
    if (context_.node_cidr_mask < cidr->prefix_length() ||
        context_.node_cidr_mask > (cidr->family() == IpFamily::kV4 ? 32 : 128)) {
      return InvalidArgument(fmt::format("node CIDR mask /{} does not fit in {}",
                                         context_.node_cidr_mask, cidr->ToString()));
    }
    cluster_ = *cidr;
    nodes_ = &context_.informers.For(resources::kNodes);
    nodes_->AddHandler(
        {[this](const ObjectPtr& node) { queue_.Add(ObjectKeyOf(*node)); },
         [this](const ObjectPtr&, const ObjectPtr& node) { queue_.Add(ObjectKeyOf(*node)); },
         nullptr});
    // One worker: allocations are decided one at a time, so two nodes never get one range.
    workers_ = std::make_unique<WorkerPool>(std::string(kName), queue_, 1,
                                            [this](const std::string& key) { return Sync(key); });
    return Status::Ok();
  }

  void Stop() override {
    queue_.ShutDown();
    workers_.reset();
  }

 private:
  static std::string ObjectKeyOf(const nlohmann::json& node) { return ObjectKey(node); }

  Status Sync(const std::string& name) {
    ObjectPtr node = nodes_->Get("", name);
    if (!node) return Status::Ok();
    const auto& spec = node->value("spec", nlohmann::json::object());
    if (!spec.value("podCIDR", "").empty()) return Status::Ok();

    // Ranges in use: the nodes' as the informer sees them, plus what this controller handed out
    // that the informer has not shown yet.
    std::set<std::string> used;
    for (const ObjectPtr& other : nodes_->List()) {
      std::string taken = other->value("spec", nlohmann::json::object()).value("podCIDR", "");
      if (!taken.empty()) used.insert(taken);
    }
    std::set<std::string> pending;
    {
      std::lock_guard lock(mu_);
      for (const auto& [node_name, range] : assigned_) {
        if (node_name != name) pending.insert(range);
      }
    }
    used.insert(pending.begin(), pending.end());

    const int host_bits = context_.node_cidr_mask - cluster_.prefix_length();
    const uint64_t count = host_bits >= 63 ? UINT64_MAX : (uint64_t{1} << host_bits);
    const uint64_t range_size =
        uint64_t{1} << ((cluster_.family() == IpFamily::kV4 ? 32 : 128) - context_.node_cidr_mask);
    for (uint64_t i = 0; i < count; ++i) {
      auto first = cluster_.AddressAt(i * range_size);
      if (!first.ok()) break;
      auto range = Cidr::Containing(*first, context_.node_cidr_mask);
      if (!range.ok()) break;
      std::string text = range->ToString();
      if (used.count(text)) continue;
      nlohmann::json patch = {{"spec", {{"podCIDR", text}, {"podCIDRs", {text}}}}};
      auto patched =
          context_.client.Patch(resources::kNodes, "", name, PatchType::kMerge, patch.dump());
      if (!patched.ok()) return patched.status();
      {
        std::lock_guard lock(mu_);
        assigned_[name] = text;
      }
      log::Info(kName, "node {} gets pod CIDR {}", name, text);
      context_.events.Record(*node, "Normal", "CIDRAssignmentSucceeded",
                             fmt::format("Node {} has CIDR {}", name, text));
      return Status::Ok();
    }
    context_.events.Record(*node, "Warning", "CIDRNotAvailable",
                           fmt::format("Node {} status is now: CIDRNotAvailable", name));
    return Unavailable(fmt::format("no free /{} left in {} for node {}", context_.node_cidr_mask,
                                   cluster_.ToString(), name));
  }

  ControllerContext& context_;
  Cidr cluster_;
  Informer* nodes_ = nullptr;
  WorkQueue queue_;
  std::unique_ptr<WorkerPool> workers_;
  std::mutex mu_;
  std::map<std::string, std::string> assigned_;  // guarded by mu_; node -> range handed out
};

}  // namespace

std::unique_ptr<Component> NewNodeIpamController(ControllerContext& context) {
  return std::make_unique<NodeIpamController>(context);
}

}  // namespace orch
