/* cli_stylize.c: `stylefs stylize` (one image) and `stylefs styles` (list). */
#include "cli.h"
#include "log.h"
#include "pipeline.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char stylize_help[] =
    "usage: stylefs stylize [options] STYLE INPUT OUTPUT\n"
    "Stylize one image.  INPUT may be - for standard input; OUTPUT may be -\n"
    "for standard output (then --format is needed).  The output format\n"
    "follows OUTPUT's extension: .jpg/.jpeg, .png, .bmp, .tga, .webp, .tif/.tiff,\n"
    ".heic/.heif or .avif.\n"
    "STYLE is a style's name, with any variant: NAME@P (P percent of the\n"
    "style, 0..100), NAME+colors (keep the photo's colours), NAME@P+colors.\n"
    "  --styles DIR      more styles folders (DIR[:DIR...]), after the defaults\n"
    "  --style-image F   a painting as the style (then no STYLE argument)\n"
    "  --strength P      with --style-image: percent of the painting's style (100)\n"
    "  --colors          with --style-image: keep the photo's colours\n"
    "  --arbitrary DIR   the arbitrary-style networks (default: found on the styles path)\n"
    "  --cache DIR       cache folder (default $XDG_CACHE_HOME/stylefs)\n"
    "  --no-cache        neither read nor write the cache\n"
    "  --quality N       quality of JPEG, WebP, HEIC, AVIF output 1..100 (default 90)\n"
    "  --max-side N      downscale so the longer side is at most N (default 1024, 0 = off)\n"
    "  --max-pixels N    refuse sources over N pixels (default 50000000)\n"
    "  --format FMT      output format: jpg png bmp tga webp tiff heic avif (overrides the extension)\n"
    "  --strip-meta      leave out the source's EXIF, XMP and ICC profile (kept by default)\n"
    "  --device DEV      auto, cpu or cuda (default auto)\n"
    "  -v, --verbose     say which engine ran, hit or miss, and the time taken\n"
    "  -h, --help        this help\n";

/* What `stylize` was asked for. */
struct stylize_args {
    struct sf_cli_settings cs;      /* the shared settings (cli.h) */
    const char *format, *style_image, *style, *in, *out;
    uint64_t strength;
    int colors;                     /* --colors */
    enum sf_format fmt;             /* the output's */
    int no_cache;
};

/* Parse argv into a.  Returns -1 to go on, else the exit status. */
static int stylize_parse(int argc, char **argv, struct stylize_args *a)
{
    enum { O_NOCACHE = SF_OPT_NEXT, O_FORMAT, O_STYLEIMG, O_STRENGTH, O_COLORS };
    static const struct option opts[] = {
        SF_CLI_SETTINGS_OPTIONS,
        { "no-cache", no_argument, 0, O_NOCACHE },      { "format", required_argument, 0, O_FORMAT },
        { "style-image", required_argument, 0, O_STYLEIMG }, { "strength", required_argument, 0, O_STRENGTH },
        { "colors", no_argument, 0, O_COLORS },
        { "verbose", no_argument, 0, 'v' },             { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    int c;

    memset(a, 0, sizeof *a);
    sf_cli_settings_init(&a->cs);
    a->strength = 100;
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case O_NOCACHE: a->no_cache = 1; break;
        case O_FORMAT: a->format = optarg; break;
        case O_STYLEIMG: a->style_image = optarg; break;
        case O_COLORS: a->colors = 1; break;
        case O_STRENGTH:
            if (sf_cli_parse_num("stylize", "--strength", optarg, 0, 100, &a->strength)) return SF_EXIT_USAGE;
            break;
        case 'v': sf_log_set_level(SF_LOG_INFO); break;
        case 'h': fputs(stylize_help, stdout); return SF_EXIT_OK;
        case '?': return sf_cli_usage("stylize", "bad option", NULL);
        default:
            if (sf_cli_setting(&a->cs, "stylize", c, optarg)) return SF_EXIT_USAGE;
        }
    }
    if (argc - optind != (a->style_image ? 2 : 3))
        return sf_cli_usage("stylize", a->style_image ? "expected INPUT OUTPUT after --style-image" :
                                                        "expected STYLE INPUT OUTPUT", NULL);
    if (!a->style_image && a->strength != 100)
        return sf_cli_usage("stylize", "--strength goes with --style-image (or name NAME@P)", NULL);
    if (!a->style_image && a->colors)
        return sf_cli_usage("stylize", "--colors goes with --style-image (or name NAME+colors)", NULL);
    a->style = a->style_image ? a->style_image : argv[optind];
    a->in = argv[optind + !a->style_image];
    a->out = argv[optind + 1 + !a->style_image];
    if (a->format) {
        char name[32];
        snprintf(name, sizeof name, "x.%s", a->format);
        if ((a->fmt = sf_format_for_output(name)) == SF_FMT_UNKNOWN)
            return sf_cli_usage("stylize", "--format must be jpg, png, bmp, tga, webp, tiff, heic or avif, not",
                                a->format);
    } else if (!strcmp(a->out, "-")) {
        return sf_cli_usage("stylize", "writing to standard output needs --format", NULL);
    } else if ((a->fmt = sf_format_for_output(a->out)) == SF_FMT_UNKNOWN) {
        char ext[16];
        fprintf(stderr, "stylefs: stylize: %s: cannot write '.%s' files; use .jpg, .png, .bmp, .tga, .webp, .tiff, "
                        ".heic or .avif\n",
                a->out, sf_path_ext(a->out, ext, sizeof ext));
        return SF_EXIT_USAGE;
    }
    return -1;
}

/* The style: a name in the styles folder, or --style-image's painting
 * (named after its file, at --strength).  0, or -1 after saying why. */
static int stylize_style(const struct stylize_args *a, struct sf_model **model)
{
    struct sf_styles_path *sp = malloc(sizeof *sp);
    char why[900] = "";
    int rc = -1;

    if (!sp) {
        fprintf(stderr, "stylefs: stylize: out of memory\n");
        return -1;
    }
    if (sf_styles_path(a->cs.styles, sp, why, sizeof why)) {
        if (!a->style_image || a->cs.styles) {
            fprintf(stderr, "stylefs: stylize: %s\n", why);
            goto out_free_path;
        }
        sp->n = 0;                  /* a painting needs only the networks */
    }
    if (a->style_image) {
        char name[SF_STYLE_NAME_MAX];
        const char *base = strrchr(a->style_image, '/'), *dot;
        base = base ? base + 1 : a->style_image;
        dot = strrchr(base, '.');
        size_t stem = dot && dot > base ? (size_t)(dot - base) : strlen(base);
        int n = snprintf(name, sizeof name, "%.*s", (int)(stem < 100 ? stem : 100), base);
        for (char *c = name; *c; c++)       /* a file's name may hold '@' or '+': not a suffix here */
            if (*c == '+' || *c == '@')
                *c = '_';
        snprintf(name + n, sizeof name - (size_t)n, "@%d%s", (int)a->strength, a->colors ? "+colors" : "");
        if ((rc = sf_model_load_image(a->style_image, name, sp, a->cs.arbitrary, model, why, sizeof why)))
            fprintf(stderr, "stylefs: stylize: --style-image %s\n", why);
        goto out_free_path;
    }
    if ((rc = sf_model_load(sp, a->cs.arbitrary, a->style, model, why, sizeof why)) == -ENOENT)
        fprintf(stderr, "stylefs: stylize: unknown style '%s': %s (see 'stylefs styles')\n", a->style, why);
    else if (rc)
        fprintf(stderr, "stylefs: stylize: style %s is damaged: %s\n", a->style, why);
out_free_path:
    free(sp);
    return rc ? -1 : 0;
}

/* All of a pipe (standard input that is no regular file).  0 or -errno. */
static int read_pipe(int fd, uint8_t **src, size_t *len)
{
    size_t cap = 1 << 20;
    ssize_t r;
    int rc;

    *len = 0;
    *src = malloc(cap);
    rc = *src ? 0 : -ENOMEM;
    while (!rc && (r = read(fd, *src + *len, cap - *len)) != 0) {
        uint8_t *ns;
        if (r < 0) {
            if (errno != EINTR)
                rc = -errno;
            continue;
        }
        *len += (size_t)r;
        if (*len == cap) {
            if (cap >= SF_MAX_SOURCE_BYTES) { rc = -EFBIG; break; }
            if (!(ns = realloc(*src, cap *= 2))) { rc = -ENOMEM; break; }
            *src = ns;
        }
    }
    return rc;
}

/* INPUT (a file, - for standard input, or a pipe named on the command
 * line, such as bash's <(cmd)).  0, or -1 after saying why. */
static int stylize_read(const char *in, uint8_t **src, size_t *len)
{
    struct stat st;
    int rc = !strcmp(in, "-") ? sf_read_fd(STDIN_FILENO, SF_MAX_SOURCE_BYTES, src, len)
                              : sf_read_file(in, SF_MAX_SOURCE_BYTES, src, len);
    if (rc == -EINVAL && !strcmp(in, "-")) {
        rc = read_pipe(STDIN_FILENO, src, len);
    } else if (rc == -EINVAL && stat(in, &st) == 0 && S_ISFIFO(st.st_mode)) {
        /* named explicitly, so waiting for its writer is what is asked */
        int fd = open(in, O_RDONLY | O_CLOEXEC);
        rc = fd < 0 ? -errno : read_pipe(fd, src, len);
        if (fd >= 0)
            close(fd);
    } else if (rc == -EINVAL) {
        fprintf(stderr, "stylefs: stylize: %s: not a regular file or a pipe\n", in);
        return -1;
    }
    if (rc) {
        fprintf(stderr, "stylefs: stylize: %s: %s\n", in, strerror(-rc));
        return -1;
    }
    return 0;
}

/* OUTPUT (a file, replaced atomically, or - for standard output).  0, or
 * -1 after saying why. */
static int stylize_write(const char *outp, const uint8_t *out, size_t outlen)
{
    size_t off = 0;
    int rc;

    if (strcmp(outp, "-")) {
        if ((rc = sf_write_file_atomic(outp, out, outlen)))
            fprintf(stderr, "stylefs: stylize: %s: %s\n", outp, strerror(-rc));
        return rc ? -1 : 0;
    }
    while (off < outlen) {
        ssize_t w = write(STDOUT_FILENO, out + off, outlen - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            fprintf(stderr, "stylefs: stylize: writing standard output: %s\n", strerror(errno));
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

/* The cache, unless --no-cache; going on without it when it cannot be
 * opened.  0, or -1 after saying why (no folder for it at all). */
static int stylize_cache(const struct stylize_args *a, struct sf_cache **cache)
{
    char dir[PATH_MAX], why[512];

    *cache = NULL;
    if (a->no_cache)
        return 0;
    if (sf_cli_cache_dir(a->cs.cache, dir, sizeof dir)) {
        fprintf(stderr, "stylefs: stylize: no cache folder: set --cache, XDG_CACHE_HOME or HOME\n");
        return -1;
    }
    if (sf_cache_open(dir, NULL, cache, why, sizeof why))
        sf_warn("stylize: %s; going on without the cache", why);
    return 0;
}

int cmd_stylize(int argc, char **argv)
{
    struct stylize_args a;
    struct sf_model *model = NULL;
    struct sf_cache *cache = NULL;
    struct sf_pipeline pipe;
    uint8_t *src = NULL, *out = NULL;
    size_t srclen, outlen;
    char why[512] = "";
    int how = 0, rc, status;
    double t0;

    if ((status = stylize_parse(argc, argv, &a)) >= 0)
        return status;
    status = SF_EXIT_FAIL;
    if (stylize_style(&a, &model))
        return status;
    if (stylize_read(a.in, &src, &srclen))
        goto out_model;
    if (stylize_cache(&a, &cache))
        goto out_src;
    sf_pipeline_init(&pipe, a.cs.device, &a.cs.set, cache);
    t0 = sf_monotonic();
    {
        struct sf_produce_req r = { .model = model, .fmt = a.fmt, .src = src, .len = srclen, .what = "output" };
        rc = sf_produce(&pipe, &r, &out, &outlen, &how, why, sizeof why);
    }
    if (rc) {
        fprintf(stderr, "stylefs: stylize: %s: %s\n", a.in, why[0] ? why : strerror(-rc));
        goto out_pipe;
    }
    sf_info("%s: %s, %.3f s", a.in, how == SF_PRODUCED_HIT ? "cache hit" : cache ? "computed and cached" : "computed",
            sf_monotonic() - t0);
    if (stylize_write(a.out, out, outlen) == 0)
        status = SF_EXIT_OK;
    free(out);
out_pipe:
    sf_pipeline_close(&pipe);
    sf_cache_close(cache);
out_src:
    free(src);
out_model:
    sf_model_free(model);
    return status;
}

static const char styles_help[] =
    "usage: stylefs styles [--styles DIR[:DIR...]] [--arbitrary DIR] [-v]\n"
    "List the styles that load, one per line: its name, a tab, its kind\n"
    "(\"network\", a pretrained folder; or \"painting\", an image run through\n"
    "the arbitrary-style networks), a space and the folder or file it comes\n"
    "from (a name's control bytes and backslashes escaped as by 'ls -b').\n"
    "The folders searched are the system's, the user's, then --styles\n"
    "(see 'man stylefs'); a later folder's style shadows an earlier one's.\n"
    "Damaged styles, name clashes and shadowing are reported on stderr.\n"
    "  --styles DIR      more styles folders, searched after the defaults\n"
    "  --arbitrary DIR   the arbitrary-style networks (for paintings)\n"
    "  -v, --verbose     also say on stderr which folders were searched\n"
    "  -h, --help        this help\n";

int cmd_styles(int argc, char **argv)
{
    static const struct option opts[] = {
        { "styles", required_argument, 0, 's' }, { "arbitrary", required_argument, 0, 'a' },
        { "verbose", no_argument, 0, 'v' },      { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    const char *styles_opt = NULL, *arb = NULL;
    struct sf_styles_path *sp;
    char why[900];
    struct sf_model **models;
    size_t n;
    int c, verbose = 0, status = SF_EXIT_FAIL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        if (c == 's')
            styles_opt = optarg;
        else if (c == 'a')
            arb = optarg;
        else if (c == 'v')
            verbose = 1;
        else if (c == 'h')
            return fputs(styles_help, stdout), SF_EXIT_OK;
        else
            return sf_cli_usage("styles", "bad option", NULL);
    }
    if (optind != argc)
        return sf_cli_usage("styles", "unexpected argument", argv[optind]);
    if (!(sp = malloc(sizeof *sp))) {
        fprintf(stderr, "stylefs: styles: out of memory\n");
        return SF_EXIT_FAIL;
    }
    if (sf_styles_path(styles_opt, sp, why, sizeof why)) {
        fprintf(stderr, "stylefs: styles: %s\n", why);
        goto out_free_path;
    }
    for (int i = 0; verbose && i < sp->n; i++)
        fprintf(stderr, "stylefs: styles: searching %s\n", sp->dir[i]);
    if (sf_models_load(sp, arb, NULL, 0, "styles: ", &models, &n))
        goto out_free_path;
    for (size_t i = 0; i < n; i++) {
        char name[3 * 256], path[3 * PATH_MAX];
        printf("%s\t%s %s\n", sf_escape(models[i]->name, name, sizeof name), sf_style_kind_name(models[i]),
               sf_escape(sf_style_path(models[i]), path, sizeof path));
    }
    sf_models_free(models, n);
    status = SF_EXIT_OK;
out_free_path:
    free(sp);
    return status;
}
