/* pixels.h: the ground floor under the image codecs: the formats stylefs
 * knows and a decoded picture.  image.h (the codec the house uses) and
 * codecs.h (the formats behind Debian's libraries) both build on it, so
 * that neither includes the other's header. */
#ifndef SF_PIXELS_H
#define SF_PIXELS_H

#include <stdint.h>

/* The values are stored in cache entries (cache.h KIND): never renumber. */
enum sf_format {
    SF_FMT_UNKNOWN = 0, SF_FMT_JPEG, SF_FMT_PNG, SF_FMT_BMP, SF_FMT_GIF,
    SF_FMT_TGA, SF_FMT_PSD, SF_FMT_PNM, SF_FMT_WEBP, SF_FMT_TIFF, SF_FMT_HEIC,
    SF_FMT_AVIF,
};

struct sf_image {
    int w, h;
    uint8_t *rgb;      /* [h][w][3] */
    uint8_t *alpha;    /* [h][w], or NULL when the source has none */
};

#endif
