/* stb_impl.c: the stb_image and stb_image_write implementations (Debian's libstb-dev, version 2.27 of
 * stb_image), compiled here alone so that the project's warnings and the fuzz build's options can
 * treat them apart from our code. Only the decoders for the formats a user's digit comes in are built:
 * fewer decoders, fewer of 2.27's bugs to screen for (image_screen.h). */
#ifdef HD_HAVE_STB
#define STB_IMAGE_IMPLEMENTATION
#include <stdlib.h>
/* Zeroed allocations: 2.27 decodes a JPEG scan that names a Huffman table no DHT defined from its
 * decoder struct as malloc left it, and then indexes with garbage (a review's MSan run found it). */
#define STBI_MALLOC(size)               calloc(1, (size))
#define STBI_REALLOC(pointer, new_size) realloc((pointer), (new_size))
#define STBI_FREE(pointer)              free(pointer)
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include "stb_image.h"
#include "stb_image_write.h"
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#else
/* ISO C wants something in every file. */
typedef int hd_stb_not_built;
#endif
