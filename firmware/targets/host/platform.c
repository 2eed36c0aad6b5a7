/* tinyml-kit harness, host target: stdio files, CLOCK_MONOTONIC nanoseconds.
 * Usage: model <input.bin> <output.bin> [repeat] */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tk_platform.h"

#define TK_MAX_FILES 4
static FILE *files[TK_MAX_FILES];

void tk_platform_init(int argc, char **argv, const char **input_path, const char **output_path,
                      long *repeat) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin [REPEAT]\n", argc > 0 ? argv[0] : "model");
        exit(2);
    }
    *input_path = argv[1];
    *output_path = argv[2];
    if (argc == 4) *repeat = strtol(argv[3], NULL, 10);
}

int tk_platform_open(const char *path, int for_writing) {
    for (int h = 0; h < TK_MAX_FILES; ++h) {
        if (files[h] == NULL) {
            files[h] = fopen(path, for_writing ? "wb" : "rb");
            return files[h] ? h : -1;
        }
    }
    return -1;
}

long tk_platform_read(int handle, void *buf, long bytes) {
    return (long)fread(buf, 1, (size_t)bytes, files[handle]);
}

long tk_platform_write(int handle, const void *buf, long bytes) {
    return (long)fwrite(buf, 1, (size_t)bytes, files[handle]);
}

void tk_platform_close(int handle) {
    fclose(files[handle]);
    files[handle] = NULL;
}

void tk_platform_print(const char *line) {
    puts(line);
    fflush(stdout);
}

uint64_t tk_platform_counter(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

const char *tk_platform_counter_unit(void) { return "ns"; }

void tk_platform_exit(int status) {
    fflush(stdout);
    exit(status);
}
