// The table of orch's controllers (include/orch/controllers.h), in start order. Each controller
// lives in its own file and contributes one line here.
#include "orch/controllers.h"

#include "cronjob_controller.h"
#include "daemonset_controller.h"
#include "deployment_controller.h"
#include "disruption_controller.h"
#include "endpoints_controller.h"
#include "endpointslice_controller.h"
#include "garbage_collector.h"
#include "job_controller.h"
#include "local_path_provisioner.h"
#include "namespace_controller.h"
#include "node_ipam.h"
#include "node_lifecycle_controller.h"
#include "podgc_controller.h"
#include "replicaset_controller.h"
#include "service_account_credentials.h"
#include "serviceaccount_controller.h"
#include "servicelb_controller.h"
#include "statefulset_controller.h"
#include "storage_protection_controller.h"

namespace orch {

const std::vector<ControllerEntry>& AllControllers() {
  static const std::vector<ControllerEntry> kControllers = {
      {"nodeipam", NewNodeIpamController},
      {"nodelifecycle", NewNodeLifecycleController},
      {"replicaset", NewReplicaSetController},
      {"replicationcontroller", NewReplicationController},
      {"deployment", NewDeploymentController},
      {"daemonset", NewDaemonSetController},
      {"garbagecollector", NewGarbageCollector},
      {"namespace", NewNamespaceController},
      {"job", NewJobController},
      {"ttlafterfinished", NewTtlAfterFinishedController},
      {"cronjob", NewCronJobController},
      {"endpoints", NewEndpointsController},
      {"endpointslice", NewEndpointSliceController},
      {"endpointslicemirroring", NewEndpointSliceMirroringController},
      {"disruption", NewDisruptionController},
      {"serviceaccount", NewServiceAccountController},
      {"serviceaccount-token", NewServiceAccountTokensController},
      {"root-ca-cert-publisher", NewRootCaPublisher},
      {"statefulset", NewStatefulSetController},
      {"servicelb", NewServiceLbController},
      {"localpath", NewLocalPathProvisioner},
      {"pvc-protection", NewPvcProtectionController},
      {"pv-protection", NewPvProtectionController},
      {"podgc", NewPodGcController},
  };
  return kControllers;
}

std::vector<std::unique_ptr<Component>> NewControllers(ControllerContext& context,
                                                       const std::set<std::string>& disabled) {
  std::vector<std::unique_ptr<Component>> controllers;
  for (const ControllerEntry& entry : AllControllers()) {
    if (disabled.count(entry.name) == 0) controllers.push_back(entry.make(context));
  }
  return controllers;
}

}  // namespace orch
