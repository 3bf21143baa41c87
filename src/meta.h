/* meta.h: keeping a photo's metadata (EXIF, XMP, the ICC profile) on its
 * styled copy: reading it from a JPEG, making the EXIF true of the styled
 * pixels, and writing it into a JPEG (meta.c).  HEIF and WebP carry theirs
 * through their libraries (codecs.c).
 *
 * The EXIF of a styled copy: the pixels are already turned the way the
 * source's orientation said, so Orientation becomes 1 (top-left); the
 * thumbnail (IFD1 and the bytes it points to) is the source's picture,
 * not the styled one, so it is unlinked and its bytes zeroed.  Everything
 * else (dates, camera, GPS, maker notes) is kept byte for byte.
 * All functions return 0 or -errno. */
#ifndef SF_META_H
#define SF_META_H

#include <stddef.h>
#include <stdint.h>

#include "pixels.h"

/* The EXIF (APP1 "Exif\0\0"), XMP (APP1 Adobe XMP) and ICC profile
 * (APP2 ICC_PROFILE, its chunks joined in order) of a JPEG's headers, up
 * to its first scan.  Missing or malformed blocks are left out.  Returns 0
 * or -ENOMEM. */
int sf_meta_from_jpeg(const uint8_t *d, size_t n, struct sf_meta *m);

/* Make exif (a TIFF-structured block, modified in place) true of a styled
 * copy: Orientation 1, no thumbnail.  Returns 0, or -EINVAL when the
 * block's structure does not read (the caller drops it). */
int sf_exif_for_copy(uint8_t *exif, size_t len);

/* Insert m's blocks after a JPEG's SOI (and its JFIF APP0): APP1 EXIF,
 * APP1 XMP, APP2 ICC_PROFILE chunks.  A block over a segment's 65533
 * bytes (EXIF, XMP) is left out.  *jpeg is replaced by a malloc'd copy.
 * Returns 0, -EINVAL (not a JPEG), -ENOMEM. */
int sf_meta_into_jpeg(uint8_t **jpeg, size_t *len, const struct sf_meta *m);

void sf_meta_free(struct sf_meta *m);
/* A deep copy.  0 or -ENOMEM. */
int sf_meta_copy(struct sf_meta *dst, const struct sf_meta *src);

#endif
