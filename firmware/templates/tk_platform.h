/* tinyml-kit harness: what main.c needs from a target (firmware/targets/<target>/platform.c). */
#ifndef TK_PLATFORM_H
#define TK_PLATFORM_H

#include <stdint.h>

/* Parse the command line (host) or apply the target's defaults (semihosting: files in QEMU's cwd). */
void tk_platform_init(int argc, char **argv, const char **input_path, const char **output_path,
                      long *repeat);

/* Files: a handle >= 0, or -1 on failure. read/write return the bytes transferred. */
int tk_platform_open(const char *path, int for_writing);
long tk_platform_read(int handle, void *buf, long bytes);
long tk_platform_write(int handle, const void *buf, long bytes);
void tk_platform_close(int handle);

/* One line of text on the console (a newline is added). */
void tk_platform_print(const char *line);

/* A monotonic counter and the name of its unit ("ns" on the host, "instructions" under QEMU -icount). */
uint64_t tk_platform_counter(void);
const char *tk_platform_counter_unit(void);

/* Leave the program with an exit status (semihosting SYS_EXIT_EXTENDED on the Cortex-M target). */
void tk_platform_exit(int status);

#endif /* TK_PLATFORM_H */
