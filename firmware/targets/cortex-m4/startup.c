/* tinyml-kit Cortex-M4 startup for QEMU's mps2-an386: vector table, .data/.bss init, FPU on. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(int argc, char **argv);
void tk_platform_exit(int status);
void tk_platform_print(const char *line);
void tk_systick_handler(void);

void tk_reset_handler(void);
void tk_fault_handler(void);

__attribute__((section(".isr_vector"), used)) const void *const tk_vector_table[16] = {
    &_estack,          /* initial stack pointer */
    tk_reset_handler,  /* reset */
    tk_fault_handler,  /* NMI */
    tk_fault_handler,  /* HardFault */
    tk_fault_handler,  /* MemManage */
    tk_fault_handler,  /* BusFault */
    tk_fault_handler,  /* UsageFault */
    0, 0, 0, 0,        /* reserved */
    tk_fault_handler,  /* SVCall */
    tk_fault_handler,  /* DebugMonitor */
    0,                 /* reserved */
    tk_fault_handler,  /* PendSV */
    tk_systick_handler /* SysTick */
};

void tk_reset_handler(void) {
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (uint32_t *dst = &_sbss; dst < &_ebss;) *dst++ = 0u;
    /* CPACR: full access to CP10/CP11 (the single-precision FPU) */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
    tk_platform_exit(main(0, 0));
    for (;;) {
    }
}

void tk_fault_handler(void) {
    tk_platform_print("tk: error: CPU fault (HardFault/NMI/unexpected exception)");
    tk_platform_exit(4);
    for (;;) {
    }
}
