/* fuzz_decode.c: the libFuzzer target behind `make fuzz`: the path every
 * source takes before the network (sniff, probe, guard, decode, EXIF turn,
 * resize) and back out through the encoders, on arbitrary bytes.
 *
 * Invariants checked on every input (abort() marks a finding):
 *   - a refusal is -EINVAL, -EFBIG or -ENOMEM with a reason;
 *   - an accepted image has the size probe reported, within max_pixels;
 *   - it resizes, encodes to PNG and JPEG, and the PNG decodes back to the
 *     same pixels. */
#include "image.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_PIXELS (1u << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    struct sf_image img, back;
    enum sf_format fmt;
    char why[256] = "";
    uint8_t *out;
    size_t outlen;
    int w, h, rc;

    rc = sf_image_decode(data, len, FUZZ_MAX_PIXELS, &img, why, sizeof why);
    if (rc) {
        if ((rc != -EINVAL && rc != -EFBIG && rc != -ENOMEM) || !why[0])
            abort();
        return 0;
    }
    if (sf_image_probe(data, len, &fmt, &w, &h, why, sizeof why) || w != img.w || h != img.h ||
        (uint64_t)w * h > FUZZ_MAX_PIXELS || !img.rgb)
        abort();
    if (sf_image_fit(&img, 48) == 0 &&
        sf_image_encode(&img, SF_FMT_PNG, 90, &out, &outlen, why, sizeof why) == 0) {
        if (sf_image_decode(out, outlen, FUZZ_MAX_PIXELS, &back, why, sizeof why) ||
            back.w != img.w || back.h != img.h ||
            memcmp(back.rgb, img.rgb, (size_t)img.w * img.h * 3) || !back.alpha != !img.alpha)
            abort();
        sf_image_free(&back);
        free(out);
        if (sf_image_encode(&img, SF_FMT_JPEG, 75, &out, &outlen, why, sizeof why) == 0)
            free(out);
    }
    sf_image_free(&img);
    return 0;
}
