/* The sandbox ("pause") process of every pod: holds the pod's namespaces open, reaps zombies
 * (it is PID 1 of pods that share a process namespace) and exits cleanly on SIGTERM or SIGINT. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
  /* Block the signals we care about and take them synchronously: no handler races, and the
   * process sleeps in the kernel without waking until one arrives. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return 1;
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGCHLD) {
      while (waitpid(-1, NULL, WNOHANG) > 0) {
      }
      continue;
    }
    return 0; /* SIGTERM or SIGINT */
  }
}
