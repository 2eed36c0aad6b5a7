/* tinyml-kit harness, Cortex-M4 target under QEMU: semihosting file I/O and a SysTick counter.
 *
 * With `qemu-system-arm -icount shift=0` every instruction advances virtual time by 1 ns, and
 * SysTick counts the 25 MHz system clock of mps2-an386, so one tick is 40 instructions. The 24-bit
 * counter's wraps are counted by the SysTick interrupt. */
#include <stdint.h>

#include "tk_platform.h"

#define TK_SYS_OPEN 0x01
#define TK_SYS_CLOSE 0x02
#define TK_SYS_WRITE0 0x04
#define TK_SYS_WRITE 0x05
#define TK_SYS_READ 0x06
#define TK_SYS_EXIT_EXTENDED 0x20
#define TK_ADP_STOPPED_APPLICATION_EXIT 0x20026

#define TK_SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define TK_SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define TK_SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define TK_SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define TK_ICSR_PENDSTSET (1u << 26)
#define TK_SYSTICK_RELOAD 0x00FFFFFFu
#define TK_INSTRUCTIONS_PER_TICK 40u /* 1 ns per instruction (-icount shift=0) / 25 MHz SysTick */

static volatile uint32_t systick_wraps;

static int semihost(int operation, void *argument) {
    register int r0 __asm__("r0") = operation;
    register void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static uint32_t length(const char *text) {
    uint32_t n = 0;
    while (text[n]) ++n;
    return n;
}

void tk_systick_handler(void) { systick_wraps = systick_wraps + 1u; }

void tk_platform_init(int argc, char **argv, const char **input_path, const char **output_path,
                      long *repeat) {
    (void)argc;
    (void)argv;
    (void)input_path;  /* input.bin / output.bin in QEMU's working directory */
    (void)output_path;
    *repeat = 1;
    TK_SYST_RVR = TK_SYSTICK_RELOAD;
    TK_SYST_CVR = 0u;
    TK_SYST_CSR = 0x7u; /* processor clock, interrupt on wrap, enabled */
    while (TK_SYST_CVR == 0u) {
        /* the first tick loads the reload value; count from there */
    }
}

int tk_platform_open(const char *path, int for_writing) {
    uint32_t block[3] = {(uint32_t)path, for_writing ? 5u /* "wb" */ : 1u /* "rb" */, length(path)};
    return semihost(TK_SYS_OPEN, block);
}

long tk_platform_read(int handle, void *buf, long bytes) {
    uint32_t block[3] = {(uint32_t)handle, (uint32_t)buf, (uint32_t)bytes};
    return bytes - (long)semihost(TK_SYS_READ, block); /* SYS_READ returns the bytes NOT read */
}

long tk_platform_write(int handle, const void *buf, long bytes) {
    uint32_t block[3] = {(uint32_t)handle, (uint32_t)buf, (uint32_t)bytes};
    return bytes - (long)semihost(TK_SYS_WRITE, block);
}

void tk_platform_close(int handle) {
    uint32_t block[1] = {(uint32_t)handle};
    semihost(TK_SYS_CLOSE, block);
}

void tk_platform_print(const char *line) {
    semihost(TK_SYS_WRITE0, (void *)line);
    semihost(TK_SYS_WRITE0, (void *)"\n");
}

uint64_t tk_platform_counter(void) {
    for (;;) {
        uint32_t wraps = systick_wraps;
        const uint32_t value = TK_SYST_CVR;
        const uint32_t pending = TK_SCB_ICSR & TK_ICSR_PENDSTSET;
        if (systick_wraps != wraps) continue; /* the wrap interrupt ran meanwhile: read again */
        /* wrapped, interrupt not taken yet, and `value` was read after the wrap: count it here */
        if (pending && value > TK_SYSTICK_RELOAD / 2u) wraps += 1u;
        const uint64_t ticks = (uint64_t)wraps * (TK_SYSTICK_RELOAD + 1u) + (TK_SYSTICK_RELOAD - value);
        return ticks * TK_INSTRUCTIONS_PER_TICK;
    }
}

const char *tk_platform_counter_unit(void) { return "instructions"; }

void tk_platform_exit(int status) {
    uint32_t block[2] = {TK_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    semihost(TK_SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}
