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

/* A picture's metadata, kept from its source for its styled copy (meta.h):
 * each block malloc'd, or NULL with length 0.
 *   exif  a TIFF-structured EXIF block from its byte-order mark ("II*\0" or
 *         "MM\0*"), without JPEG's "Exif\0\0" or HEIF's offset prefix
 *   xmp   the XMP packet (UTF-8 RDF/XML)
 *   icc   the ICC colour profile */
struct sf_meta {
    uint8_t *exif, *xmp, *icc;
    size_t exif_len, xmp_len, icc_len;
};

struct sf_image {
    int w, h;
    uint8_t *rgb;      /* [h][w][3] */
    uint8_t *alpha;    /* [h][w], or NULL when the source has none */
    struct sf_meta meta;    /* what the source carried (none when decoded without it) */
};

#endif
