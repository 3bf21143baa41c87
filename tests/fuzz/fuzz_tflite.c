/* fuzz_tflite.c: libFuzzer over the TFLite reader and runner (`make
 * fuzz-tflite`, seeded with ../shared/arbitrary's three models): parse
 * any bytes; when they parse, plan at 8x8 and run, the model and its
 * float copy (sf_tfl_to_float).  Nothing may read
 * outside the buffer or crash (ASan, UBSan). */
#include "tflite.h"
#include "tflnet.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Plan m at 8x8 and run it on flat inputs (nothing to do if it does not plan). */
static void plan_and_run(const struct sf_tfl_model *m)
{
    struct sf_tflnet *n;
    char why[300];

    if (sf_tflnet_plan(m, 8, 8, NULL, &n, why, sizeof why))
        return;
    for (int i = 0; i < m->nin; i++) {
        size_t ne;
        float *x = sf_tflnet_input(n, i, &ne);
        for (size_t k = 0; k < ne; k++)
            x[k] = 0.25f;
    }
    sf_tflnet_run(n);
    sf_tflnet_free(n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sf_tfl_model *m, *fm;
    char why[300];

    if (sf_tfl_parse(data, size, &m, why, sizeof why))
        return 0;
    plan_and_run(m);
    if (!sf_tfl_to_float(m, &fm, why, sizeof why)) {       /* and its float copy */
        plan_and_run(fm);
        sf_tfl_free(fm);
    }
    sf_tfl_free(m);
    return 0;
}
