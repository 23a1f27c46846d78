// How a role learns it must stop: SIGTERM and SIGINT are blocked in every thread and taken
// synchronously with sigwait by the role's main thread, so no code runs in a signal handler.
#pragma once

#include "orch/status.h"

namespace orch {

// Blocks SIGTERM and SIGINT in the calling thread. Threads started afterwards inherit the mask,
// so call it from main before any thread exists; the signals then stay pending until
// WaitForStopSignal takes them. Do not exec another program afterwards (it would inherit the mask).
Status BlockStopSignals();

// Waits until SIGTERM or SIGINT is pending and takes it; returns the signal number. Requires
// BlockStopSignals. Meant for one thread: the role's main thread.
int WaitForStopSignal();

// After the first stop signal, a second one means the user is tired of waiting for a clean stop:
// this starts a thread that waits for it and ends the process at once (exit code 1).
void ExitOnNextStopSignal();

// Asks this process to stop as if it got SIGTERM (for a component that fails while running).
void RequestStop();

// "SIGTERM", "SIGINT", or "another signal".
const char* SignalName(int signal_number);

}  // namespace orch
