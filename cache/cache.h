/* cache.h: the content-addressed cache of what stylefs computes (styled
 * images, and paintings' style vectors), in LMDB.
 *
 * One cache is one directory, created 0700 with its files 0600 (it holds
 * styled copies of private photos):
 *   data.mdb, lock.mdb   the LMDB environment (one unnamed database)
 *   stylefs.lock         flock(2) guard: every user holds it shared for as
 *                        long as the cache is open; `prune --compact` needs
 *                        it exclusive, so it never pulls the file out from
 *                        under another process.
 *
 * KEY: 16 bytes, XXH3-128 over (source-bytes hash, style digest, kind,
 * settings, format version): see pipeline.c sf_key_make.
 *
 * VALUE: a 64-byte header followed by the data.  All integers
 * little-endian.
 *   off len  field
 *     0   4  magic "SFCE" (0x53 0x46 0x43 0x45)
 *     4   2  header version, 1
 *     6   2  header length in bytes, 64
 *     8   8  created: unix seconds when the entry was stored
 *    16   8  last_read: unix seconds of the last read, kept to within
 *            SF_CACHE_ATIME_SLACK seconds (a hit rewrites the entry only
 *            when its last_read is older than that)
 *    24   8  data length in bytes (= value length - 64)
 *    32   4  width (an image's; 100 for a style vector)
 *    36   4  height (an image's; 1 for a style vector)
 *    40   4  KIND, below
 *    44   4  flags: bit 0 set in the shared store's entries signed with
 *            redis_key's secret; 0 in the local cache
 *    48   8  XXH3-64 of the data, checked on every read
 *    56   8  0; in a signed shared-store entry, its MAC: the first 8 bytes
 *            of HMAC-SHA256 under the secret over the Redis key's name,
 *            then this value with these 8 bytes taken as zero
 *            (remote.c entry_mac)
 *    64   -  the data, by KIND
 * KIND:
 *   1..11  a styled image, encoded: the value of its enum sf_format
 *          (image.h; stylefs writes 1 JPEG, 2 PNG, 3 BMP, 5 TGA, 8 WebP,
 *          9 TIFF, 10 HEIC, 11 AVIF): the file's bytes as served
 *   256    SF_ENTRY_STYLE_VECTOR: a painting's style vector (Magenta's
 *          arbitrary-style predictor, ../shared/docs/arbitrary.md):
 *          exactly 400 bytes, 100 IEEE-754 float32 values little-endian,
 *          element i at offset 4i, each finite (sf_vector_put / get)
 * A reader asks for a kind and treats an entry of another kind as a
 * miss (a key is made for one kind, so only damage or forgery gives one).
 * Entries written before style vectors had this kind (format 0) are never
 * looked up again and leave with prune.
 * An entry whose header or checksum does not check is never served: it is
 * deleted and the read is a miss.  The shared store (remote.h) keeps these
 * same VALUE bytes in Redis and checks them the same way
 * (sf_entry_header, sf_entry_check).
 *
 * ALIAS: key = 'A' followed by 16 bytes (17 bytes in all), value = the
 * 16-byte key of an entry.  The mount records "this source file, as of this
 * stat (device, inode, size, mtime, ctime), under this style and these
 * settings, is entry K", so that stat() can report an entry's exact size
 * without reading the source.  An alias is only a shortcut: a miss or a
 * dangling alias just means the source is read and hashed.  Prune drops
 * aliases whose entry is gone.
 *
 * Space: LMDB reuses the pages of deleted entries for later writes, so the
 * file stops growing once the working set is stable but never shrinks by
 * itself; sf_cache_compact rewrites it compactly.  When the map is full a
 * write first grows the map (doubling, up to map_max), then evicts the least
 * recently read entries, then gives up with -ENOSPC: the caller serves the
 * image uncached.  A full disk (LMDB's short write, which it reports as
 * EIO) is told from damage by the filesystem's free space, and also evicts
 * (the freed pages are reused inside the file) before giving up.
 *
 * DESIGN: one sf_cache per process, shared by its threads.  `rw` is a
 * process-wide rwlock: every transaction holds it shared; growing the map
 * (mdb_env_set_mapsize, which needs no live transaction in the process)
 * holds it exclusive.  LMDB's own lock file serializes writers across
 * processes, so a mount, a stylize and a prune can share one cache.
 *
 * All functions return 0 or -errno. */
#ifndef SF_CACHE_H
#define SF_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define SF_CACHE_KEY_LEN 16
#define SF_CACHE_HDR_LEN 64
#define SF_CACHE_ATIME_SLACK 60
#define SF_ENTRY_STYLE_VECTOR 256u
#define SF_VECTOR_FLOATS 100
#define SF_VECTOR_BYTES (4 * SF_VECTOR_FLOATS)

struct sf_cache;

struct sf_cache_opts {
    uint64_t map_size;   /* initial map size; 0 = 1 GiB ($STYLEFS_MAP_SIZE overrides) */
    uint64_t map_max;    /* largest map; 0 = 1 TiB ($STYLEFS_MAP_MAX overrides) */
};

struct sf_entry_meta {
    uint64_t created, last_read, data_len;
    uint32_t width, height, format;
};

struct sf_cache_stats {
    uint64_t entries, bytes;        /* bytes: values, headers included */
    uint64_t oldest_read, newest_read;
    uint64_t file_size, file_alloc; /* data.mdb size and blocks on disk */
    uint64_t map_size, map_used;    /* current map, pages in use * page size */
};

struct sf_prune_opts {
    uint64_t max_size;      /* 0 = no size limit */
    uint64_t older_than;    /* seconds; 0 = no age limit */
    int all;
    int dry_run;
};

struct sf_prune_result {
    uint64_t removed, removed_bytes, kept, kept_bytes;
};

/* Default directory: $XDG_CACHE_HOME/stylefs or ~/.cache/stylefs. */
int sf_cache_default_dir(char *buf, size_t len);

/* Open (creating the directory if needed).  Returns 0, -EACCES, -ENOENT,
 * -ENOMEM, -EIO (not an LMDB environment, or corrupt). */
int sf_cache_open(const char *dir, const struct sf_cache_opts *o, struct sf_cache **out,
                  char *why, size_t whylen);
void sf_cache_close(struct sf_cache *c);

/* Look up key.  On a hit copies the image into a malloc'd *data.
 * meta may be NULL.  Returns 0, -ENOENT (miss), -ENOMEM, -EIO. */
int sf_cache_get(struct sf_cache *c, const uint8_t key[SF_CACHE_KEY_LEN],
                 uint8_t **data, size_t *len, struct sf_entry_meta *meta);
/* Header only (no copy, no last_read update).  Returns 0, -ENOENT, -EIO. */
int sf_cache_peek(struct sf_cache *c, const uint8_t key[SF_CACHE_KEY_LEN],
                  struct sf_entry_meta *meta);
/* Store.  Returns 0, -ENOSPC (no room, in the map or on the disk, even
 * after growing and evicting), -E2BIG (larger than the largest map), -EIO. */
int sf_cache_put(struct sf_cache *c, const uint8_t key[SF_CACHE_KEY_LEN],
                 const void *data, size_t len, uint32_t width, uint32_t height,
                 uint32_t format);
/* Aliases (see ALIAS above).  get: 0, -ENOENT.  put: 0 or -errno; a put
 * that finds the map full is simply dropped (-ENOSPC). */
int sf_cache_alias_get(struct sf_cache *c, const uint8_t alias[16], uint8_t key[SF_CACHE_KEY_LEN]);
int sf_cache_alias_put(struct sf_cache *c, const uint8_t alias[16], const uint8_t key[SF_CACHE_KEY_LEN]);
int sf_cache_stats(struct sf_cache *c, struct sf_cache_stats *st);
/* Read every entry and check its header and checksum.  Returns 0 (with
 * the counts) or -EIO (the environment itself is damaged). */
int sf_cache_verify(struct sf_cache *c, uint64_t *checked, uint64_t *damaged);
/* Remove entries per o (oldest read first for max_size). */
int sf_cache_prune(struct sf_cache *c, const struct sf_prune_opts *o,
                   struct sf_prune_result *r);
/* Rewrite data.mdb compactly.  Needs the cache closed by every process.
 * Returns 0, -EBUSY (another process has it open), -ENOSPC, -EIO. */
int sf_cache_compact(const char *dir, uint64_t *before, uint64_t *after,
                     char *why, size_t whylen);

/* The VALUE format for other stores of the same entries (remote.c):
 * write the 64-byte header for data into hdr (created = last_read = now),
 * and check a whole value (header, length, checksum) into m.
 * sf_entry_check returns 0 or -EIO. */
void sf_entry_header(uint8_t hdr[SF_CACHE_HDR_LEN], const void *data, size_t len, uint32_t width,
                     uint32_t height, uint32_t format, uint64_t now);
int sf_entry_check(const void *value, size_t vlen, struct sf_entry_meta *m);

/* A style vector's data (KIND above): put writes 400 bytes; get reads
 * them back and returns 0, or -EINVAL when a value is not finite. */
void sf_vector_put(uint8_t out[SF_VECTOR_BYTES], const float v[SF_VECTOR_FLOATS]);
int sf_vector_get(const uint8_t in[SF_VECTOR_BYTES], float v[SF_VECTOR_FLOATS]);

/* The one place that turns LMDB return codes into -errno. */
int sf_mdb_errno(int rc);

#endif
