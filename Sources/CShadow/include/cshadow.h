// CShadow: the few lines of C shadow context needs on the host side.
// Seccomp user-notification constants and structs (linux/seccomp.h), the
// fork-and-exec step that installs a filter between fork and exec (no Swift
// may run in a forked child of a multithreaded process), and fixed-arity
// wrappers for variadic calls. Policy lives in Swift (Sources/Shadow).
#ifndef CSHADOW_H
#define CSHADOW_H

#include <linux/seccomp.h>
#include <linux/filter.h>
#include <linux/audit.h>
#include <sys/types.h>
#include <stdint.h>

#endif
