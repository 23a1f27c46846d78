#!/usr/bin/env bash
# Jobs, CronJobs, TTL-after-finished, cascading deletion (the garbage collector) and namespace
# deletion, driven by the real kubectl (the default one, and 1.27 and 1.33 for the key steps)
# against `orch server --disable-agent`. With no node agent the test plays the kubelet: it reports
# a job's pods Succeeded or Failed through the status subresource.
# Usage: batch_controllers_test.sh BUILD_DIR [KUBECTL]
source "$(dirname "$0")/lib.sh"
e2e_init "$1"
KUBECTL=${2:-kubectl}
command -v "$KUBECTL" >/dev/null || fail "kubectl $KUBECTL is not installed"
start_control_plane "$KUBECTL"

# The kubectl of the current round (K) and its namespace (NS).
K=$KUBECTL
NS=default
k() { "$K" -n "$NS" "$@"; }
jp() { k get "$1" -o "jsonpath=$2"; }
gone() { [[ -z "$(k get "$@" -o name --ignore-not-found 2>/dev/null)" ]]; }
# lines_are N CMD...: CMD prints N lines (for wait_for).
lines_are() {
  local n=$1
  shift
  [[ "$("$@" | wc -l)" == "$n" ]]
}
nonempty() { [[ -n "$("$@")" ]]; }
running() { kill -0 "$1" 2>/dev/null && [[ "$(ps -o stat= -p "$1")" != Z* ]]; }
exited() { ! running "$1"; }
pod_count() { k get pods -l "$1" -o name | wc -l; }
pending_is() { [[ "$(k get pods -l "$1" --field-selector=status.phase=Pending -o name | wc -l)" == "$2" ]]; }
# column TABLE HEADER: the value under HEADER in the first row of a `kubectl get` table.
column() {
  awk -v h="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == h) c = i } NR == 2 { print $c }' <<<"$1"
}

# finish_pods SELECTOR PHASE [EXIT-CODE]: what a kubelet reports once the one container ("c") of
# every Pending pod matching SELECTOR has exited, by default with 0 for Succeeded and 1 for Failed.
finish_pods() {
  local selector=$1 phase=$2 code=0 reason=Completed now pod
  if [[ "$phase" == Failed ]]; then code=${3:-1} reason=Error; fi
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for pod in $(k get pods -l "$selector" --field-selector=status.phase=Pending -o name); do
    k patch "$pod" --subresource=status --type=merge -p "{\"status\":{\"phase\":\"$phase\",
      \"containerStatuses\":[{\"name\":\"c\",\"image\":\"busybox:1\",\"imageID\":\"\",
      \"ready\":false,\"restartCount\":0,\"state\":{\"terminated\":{\"exitCode\":$code,
      \"reason\":\"$reason\",\"startedAt\":\"$now\",\"finishedAt\":\"$now\"}}}]}}" >/dev/null
  done
}

# job_yaml NAME SPEC-LINES: a Job whose pod template runs one container "c".
job_yaml() {
  cat <<EOF
apiVersion: batch/v1
kind: Job
metadata: {name: $1}
spec:
$2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: "busybox:1", command: ["true"]}]
EOF
}

# --- A CronJob firing every minute: made first, looked at last, so the wait for the minute
# overlaps the rest of the test.
NS=sched
k create namespace sched >/dev/null
run_capture k create cronjob every --image=busybox:1 --schedule='*/1 * * * *' -- true
expect_eq "$RC" 0 "create cronjob: $ERR"
cron_created=$SECONDS
# A schedule or time zone the controller could not use is refused by the API.
run_capture k create cronjob bad --image=busybox:1 --schedule='61 * * * *' -- true
expect_eq "$RC" 1 "cronjob with minute 61"
expect_contains "$ERR" 'spec.schedule: Invalid value: "61 * * * *"' "cronjob with minute 61"
run_capture k apply -f - <<'YAML'
apiVersion: batch/v1
kind: CronJob
metadata: {name: mars}
spec:
  schedule: "0 * * * *"
  timeZone: Mars/Olympus
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: "busybox:1"}]
YAML
expect_eq "$RC" 1 "cronjob in an unknown time zone"
expect_contains "$ERR" 'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus' "unknown time zone"

# One round of the key steps with kubectl $K in namespace $NS.
round() {
  local version
  version=$("$K" version --client -o json | python3 -c 'import json, sys; v = json.load(sys.stdin)["clientVersion"]; print(v["major"] + "." + v["minor"].rstrip("+"))')
  echo "--- kubectl $version ($K) in namespace $NS"
  "$K" create namespace "$NS" >/dev/null

  # A Job with completions=3 and parallelism=2: two pods, then a third once they succeed.
  job_yaml x "  completions: 3
  parallelism: 2" | k create -f - >/dev/null
  wait_for 30 "two pods of job x" pending_is job-name=x 2
  expect_eq "$(pod_count job-name=x)" 2 "parallelism caps job x's pods"
  finish_pods job-name=x Succeeded
  wait_for 30 "the third pod of job x" pending_is job-name=x 1
  expect_eq "$(pod_count job-name=x)" 3 "job x's pods"
  finish_pods job-name=x Succeeded
  run_capture k wait --for=condition=complete job/x --timeout=30s
  expect_eq "$RC" 0 "kubectl wait --for=condition=complete: $ERR"
  expect_contains "$OUT" "job.batch/x condition met" "kubectl wait"
  run_capture k get job x
  expect_eq "$(column "$OUT" COMPLETIONS)" "3/3" "kubectl get job COMPLETIONS: $OUT"
  expect_eq "$(jp job/x '{.status.succeeded}/{.status.active}')" "3/0" "job x's counts"
  [[ -n "$(jp job/x '{.status.completionTime}')" ]] || fail "job x has no completionTime"

  # A Job whose pods fail, with backoffLimit=1: the second failure ends it.
  job_yaml bad "  backoffLimit: 1" | k create -f - >/dev/null
  wait_for 30 "the pod of job bad" pending_is job-name=bad 1
  finish_pods job-name=bad Failed
  # The replacement comes after the controller's back-off (10 s).
  wait_for 60 "a replacement pod for job bad" pending_is job-name=bad 1
  finish_pods job-name=bad Failed
  run_capture k wait --for=condition=failed job/bad --timeout=30s
  expect_eq "$RC" 0 "kubectl wait --for=condition=failed: $ERR"
  expect_eq "$(jp job/bad '{.status.conditions[?(@.type=="Failed")].reason}')" \
    "BackoffLimitExceeded" "job bad's Failed reason"
  expect_eq "$(jp job/bad '{.status.failed}')" 2 "job bad's failed count"
  expect_eq "$(pod_count job-name=bad)" 2 "no pod after the backoff limit"
  run_capture k describe job bad
  expect_contains "$OUT" "BackoffLimitExceeded" "describe shows the failure event"

  # A Job made from a CronJob's template by hand.
  # (a CronJob of the round's own that fires only on New Year's Day)
  k create cronjob every --image=busybox:1 --schedule='0 0 1 1 *' -- true >/dev/null
  run_capture k create job manual --from=cronjob/every
  expect_eq "$RC" 0 "create job --from=cronjob: $ERR"
  expect_eq "$(jp job/manual '{.metadata.annotations.cronjob\.kubernetes\.io/instantiate}')" \
    manual "the instantiate annotation"
  expect_eq "$(jp job/manual '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')" \
    CronJob/every "the manual job's owner"
  wait_for 30 "the pod of job manual" pending_is job-name=manual 1
  # Like upstream, the CronJob does not count a job made by hand as one of its active runs (it
  # warns about it when the job names it as its controller: kubectl 1.32 does, 1.27 does not).
  if [[ "$(jp job/manual '{.metadata.ownerReferences[0].controller}')" == true ]]; then
    wait_for 30 "the CronJob's UnexpectedJob event" nonempty \
      k get events --field-selector=reason=UnexpectedJob,involvedObject.name=every -o name
  fi
  expect_eq "$(jp cronjob/every '{.status.active}')" "" "the CronJob's active jobs"

  # Background cascading deletion: kubectl returns once the Deployment is gone; its ReplicaSet
  # and pods follow.
  k create deployment web --image=busybox:1 --replicas=2 >/dev/null
  wait_for 30 "two pods of web" pending_is app=web 2
  # A PodDisruptionBudget the Deployment owns, as charts make them: collected with it.
  k create poddisruptionbudget web --selector=app=web --min-available=1 >/dev/null
  k patch poddisruptionbudget web --type=merge -p "{\"metadata\":{\"ownerReferences\":[{
    \"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"web\",
    \"uid\":\"$(jp deploy/web '{.metadata.uid}')\"}]}}" >/dev/null
  run_capture k delete deployment web
  expect_eq "$RC" 0 "delete deployment web: $ERR"
  wait_for 30 "web's ReplicaSet to be collected" gone rs -l app=web
  wait_for 30 "web's pods to be collected" gone pods -l app=web
  wait_for 30 "web's PodDisruptionBudget to be collected" gone poddisruptionbudget web

  # Orphaning: the pods stay, without owner references.
  cat <<EOF | k create -f - >/dev/null
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: cache}
spec:
  replicas: 2
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec:
      containers: [{name: c, image: "busybox:1"}]
EOF
  wait_for 30 "two pods of cache" pending_is app=cache 2
  run_capture k delete rs cache --cascade=orphan
  expect_eq "$RC" 0 "delete rs --cascade=orphan: $ERR"
  gone rs cache || fail "ReplicaSet cache still there after an orphaning delete"
  expect_eq "$(pod_count app=cache)" 2 "orphaned pods stay"
  expect_eq "$(k get pods -l app=cache -o jsonpath='{.items[*].metadata.ownerReferences}')" "" \
    "orphaned pods' owner references"
  k delete pods -l app=cache >/dev/null

  # Foreground cascading deletion: kubectl waits while a pod is held by a finalizer.
  k create deployment y --image=busybox:1 --replicas=2 >/dev/null
  wait_for 30 "two pods of y" pending_is app=y 2
  local held
  held=$(k get pods -l app=y -o jsonpath='{.items[0].metadata.name}')
  k patch pod "$held" --type=merge -p '{"metadata":{"finalizers":["example.com/hold"]}}' >/dev/null
  start_bg "delete-y-$NS" "$K" -n "$NS" delete deployment y --cascade=foreground --timeout=60s
  local deleter=$BG_PID
  held_deleting() { [[ -n "$(jp "pod/$held" '{.metadata.deletionTimestamp}')" ]]; }
  wait_for 30 "the held pod to be deleted" held_deleting
  wait_for 30 "y's other pod to go" lines_are 1 k get pods -l app=y -o name
  expect_contains "$(jp deploy/y '{.metadata.finalizers}')" foregroundDeletion \
    "the Deployment waits for its dependents"
  [[ -n "$(jp deploy/y '{.metadata.deletionTimestamp}')" ]] || fail "y is not being deleted"
  expect_contains "$(k get rs -l app=y -o jsonpath='{.items[*].metadata.finalizers}')" \
    foregroundDeletion "the ReplicaSet waits for its pod"
  running "$deleter" || fail "kubectl delete --cascade=foreground returned early"
  k patch pod "$held" --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]' >/dev/null
  wait_for 30 "kubectl delete --cascade=foreground to return" exited "$deleter"
  local rc=0
  wait "$deleter" || rc=$?
  expect_eq "$rc" 0 "kubectl delete --cascade=foreground: $(cat "$E2E_TMP/delete-y-$NS.log")"
  gone deploy y || fail "deployment y still there"
  gone rs -l app=y || fail "y's ReplicaSet still there"
  gone pods -l app=y || fail "y's pods still there"

  # Namespace deletion: Terminating while content remains (a ConfigMap held by a finalizer),
  # creation refused meanwhile, gone once the content is.
  local tmp=tmp-$NS
  "$K" create namespace "$tmp" >/dev/null
  "$K" -n "$tmp" create deployment d --image=busybox:1 --replicas=2 >/dev/null
  "$K" -n "$tmp" create configmap cm --from-literal=a=b >/dev/null
  "$K" -n "$tmp" create secret generic s --from-literal=a=b >/dev/null
  cat <<EOF | "$K" -n "$tmp" create -f - >/dev/null
apiVersion: v1
kind: ConfigMap
metadata: {name: held, finalizers: [example.com/hold]}
data: {a: b}
EOF
  wait_for 30 "two pods in $tmp" lines_are 2 "$K" -n "$tmp" get pods -o name
  run_capture "$K" delete namespace "$tmp" --wait=false
  expect_eq "$RC" 0 "delete namespace: $ERR"
  run_capture "$K" get namespace "$tmp"
  expect_eq "$(column "$OUT" STATUS)" Terminating "kubectl get namespace STATUS"
  run_capture "$K" -n "$tmp" create configmap late --from-literal=a=b
  [[ "$RC" != 0 ]] || fail "a ConfigMap was created in a terminating namespace"
  expect_contains "$ERR" \
    "configmaps \"late\" is forbidden: unable to create new content in namespace $tmp because it is being terminated" \
    "creating into a terminating namespace"
  wait_for 30 "$tmp's content to be deleted" \
    lines_are 0 "$K" -n "$tmp" get deployments,replicasets,pods,secrets -o name
  expect_eq "$("$K" -n "$tmp" get configmaps -o name)" configmap/held "what remains in $tmp"
  expect_eq "$("$K" get namespace "$tmp" -o jsonpath='{.status.conditions[?(@.type=="NamespaceFinalizersRemaining")].status}')" \
    True "the NamespaceFinalizersRemaining condition"
  "$K" -n "$tmp" patch configmap held --type=json \
    -p '[{"op":"remove","path":"/metadata/finalizers"}]' >/dev/null
  run_capture "$K" wait --for=delete "namespace/$tmp" --timeout=30s
  expect_eq "$RC" 0 "namespace $tmp to go: $ERR"
  gone namespace "$tmp" || fail "namespace $tmp is still there"
}

NS=batch-default
round
for version in 1.27 1.33; do
  K=/usr/lib/google-cloud-sdk/bin/kubectl.$version
  if [[ -x "$K" ]]; then
    NS=batch-${version//./-}
    round
  else
    echo "note: $K is not installed; its round is skipped"
  fi
done
K=$KUBECTL
NS=batch-default

# --- An Indexed Job: one pod per completion index, with the index annotation, hostname and env.
job_yaml idx "  completions: 3
  parallelism: 3
  completionMode: Indexed" | k create -f - >/dev/null
wait_for 30 "three pods of job idx" pending_is job-name=idx 3
expect_eq "$(k get pods -l job-name=idx -o jsonpath='{range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{"\n"}{end}' | sort | xargs)" \
  "0 1 2" "completion-index annotations"
expect_eq "$(k get pods -l job-name=idx -o jsonpath='{range .items[*]}{.spec.hostname}{"\n"}{end}' | sort | xargs)" \
  "idx-0 idx-1 idx-2" "indexed pods' hostnames"
for pod in $(k get pods -l job-name=idx -o name); do
  index=$(k get "$pod" -o jsonpath='{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}')
  expect_eq "$(k get "$pod" -o jsonpath='{.metadata.labels.batch\.kubernetes\.io/job-completion-index}')" \
    "$index" "$pod's index label"
  expect_eq "$(k get "$pod" -o jsonpath='{.spec.containers[0].env[?(@.name=="JOB_COMPLETION_INDEX")].valueFrom.fieldRef.fieldPath}')" \
    "metadata.annotations['batch.kubernetes.io/job-completion-index']" "$pod's JOB_COMPLETION_INDEX"
done
finish_pods job-name=idx Succeeded
run_capture k wait --for=condition=complete job/idx --timeout=30s
expect_eq "$RC" 0 "indexed job completes: $ERR"
expect_eq "$(jp job/idx '{.status.completedIndexes}')" "0-2" "completedIndexes"

# --- podFailurePolicy: exit code 42 fails the job at once, whatever backoffLimit says.
job_yaml policy "  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes: {operator: In, values: [42]}" | k create -f - >/dev/null
wait_for 30 "the pod of job policy" pending_is job-name=policy 1
finish_pods job-name=policy Failed 42
run_capture k wait --for=condition=failed job/policy --timeout=30s
expect_eq "$RC" 0 "job policy fails: $ERR"
expect_eq "$(jp job/policy '{.status.conditions[?(@.type=="Failed")].reason}')" PodFailurePolicy \
  "job policy's Failed reason"
expect_contains "$(jp job/policy '{.status.conditions[?(@.type=="Failed")].message}')" \
  "failed with exit code 42 matching FailJob rule at index 0" "job policy's Failed message"

# --- ttlSecondsAfterFinished=0: the finished Job is deleted, and its pod with it.
job_yaml ttl "  ttlSecondsAfterFinished: 0" | k create -f - >/dev/null
wait_for 30 "the pod of job ttl" pending_is job-name=ttl 1
finish_pods job-name=ttl Succeeded
wait_for 30 "job ttl to be deleted after it finished" gone job ttl
wait_for 30 "job ttl's pod to be collected" gone pods -l job-name=ttl

# --- The CronJob made at the start has fired: a Job named for its scheduled minute (namespace
# sched holds no other jobs).
NS=sched
scheduled_job() {
  k get jobs -o jsonpath='{range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/cronjob-scheduled-timestamp}{" "}{.metadata.name}{"\n"}{end}' |
    awk 'NF == 2 {print $2}' | head -1
}
has_scheduled_job() { [[ -n "$(scheduled_job)" ]]; }
# The first run is due at most 60 s after the CronJob was made; on a slow machine the rounds
# above may have taken longer than that, so some time is left to the controller in any case.
budget=$((80 - (SECONDS - cron_created)))
if ((budget < 20)); then budget=20; fi
wait_for "$budget" "a Job scheduled by CronJob every" has_scheduled_job
job=$(scheduled_job)
[[ "$job" =~ ^every-[0-9]+$ ]] || fail "scheduled job name: $job"
expect_eq "$(jp "job/$job" '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}')" \
  CronJob/every/true "the scheduled job's controller"
last_schedule() { [[ -n "$(jp cronjob/every '{.status.lastScheduleTime}')" ]]; }
wait_for 30 "CronJob every's lastScheduleTime" last_schedule
wait_for 30 "the pod of $job" pending_is "job-name=$job" 1
finish_pods "job-name=$job" Succeeded
last_success() { [[ -n "$(jp cronjob/every '{.status.lastSuccessfulTime}')" ]]; }
wait_for 30 "CronJob every's lastSuccessfulTime" last_success
