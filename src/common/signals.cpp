// Implementation of orch/signals.h with pthread_sigmask and sigwait.
#include "orch/signals.h"

#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <string>
#include <thread>

#include "orch/log.h"

namespace orch {
namespace {

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

Status BlockStopSignals() {
  sigset_t set = StopSignals();
  if (int err = pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) {
    return Internal(std::string("pthread_sigmask: ") + std::strerror(err));
  }
  return Status::Ok();
}

int WaitForStopSignal() {
  sigset_t set = StopSignals();
  int signal_number = 0;
  // sigwait only fails for an invalid set; loop anyway so a spurious return cannot stop a role.
  while (sigwait(&set, &signal_number) != 0) {
  }
  return signal_number;
}

void ExitOnNextStopSignal() {
  std::thread([] {
    int signal_number = WaitForStopSignal();
    log::Warn("main", "got {} again: exiting without a clean stop", SignalName(signal_number));
    _exit(1);
  }).detach();
}

void RequestStop() {
  ::kill(::getpid(), SIGTERM);
}

const char* SignalName(int signal_number) {
  switch (signal_number) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    default:
      return "another signal";
  }
}

}  // namespace orch
