/* interrupt.h: Ctrl-C (SIGINT) and SIGTERM during a training (and the second signal's end, which serve
 * shares).
 *
 * hd_interrupt_install makes the first of these signals only set a flag: the trainer finishes the step it
 * is on, writes last.safetensors (atomically, with the position in the epoch) and returns, and the command
 * says how to resume and exits with 128 + the signal's number (130 for Ctrl-C). A second signal ends the
 * process at once, as the default action would; every file hd-gpu writes is written to a temporary name
 * and renamed into place, so that leaves the previous checkpoint intact. */
#ifndef HD_INTERRUPT_H
#define HD_INTERRUPT_H

/* Installs the handlers for SIGINT and SIGTERM (once per process; not for library callers that keep
 * their own). */
void hd_interrupt_install(void);
/* The signal that asked to stop (SIGINT or SIGTERM), or 0. Async-signal-safe to read. */
int hd_interrupt_pending(void);
/* Asks to stop as if signal `sig` had arrived (tests), or forgets a request (sig 0). */
void hd_interrupt_request(int sig);
/* From a signal handler (async-signal-safe): ends the process now by `sig`'s default action, so that the
 * exit status says which signal (the second Ctrl-C of train and serve). Does not return. */
void hd_interrupt_die_by(int sig);

#endif
