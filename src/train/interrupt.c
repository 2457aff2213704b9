/* interrupt.c: the first SIGINT/SIGTERM sets a flag, the second ends the process (see interrupt.h). */
#include "hd/interrupt.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static atomic_int pending; /* lock-free: a handler may read and exchange it */

void hd_interrupt_die_by(int sig) {
    /* The signal is blocked while its handler runs, so it is unblocked after its default action is back. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    signal(sig, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig); /* not reached */
}

static void on_signal(int sig) {
    if (atomic_exchange(&pending, sig)) /* one of two at once on two threads is the second */
        hd_interrupt_die_by(sig);       /* the second one: end now */
    static const char note[] =
        "\nhd-gpu: stopping after this step and saving the run (again to quit at once)\n";
    ssize_t ignored = write(STDERR_FILENO, note, sizeof note - 1);
    (void)ignored;
}

void hd_interrupt_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART; /* reads and writes in flight carry on; the trainer polls the flag */
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

int hd_interrupt_pending(void) {
    return atomic_load(&pending);
}

void hd_interrupt_request(int sig) {
    atomic_store(&pending, sig);
}
