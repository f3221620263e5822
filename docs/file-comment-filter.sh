#!/bin/sh
# Doxygen INPUT_FILTER for *.c and *.h (see docs/Doxyfile).
#
# Doxygen says nothing about the functions of a file that has no `@file`
# comment: the file is "undocumented", so its members are neither listed nor
# warned about, and an undocumented step would pass `make docs` unseen.
# This filter passes the file through unchanged and, only when it has no
# `@file` (or `\file`) command, appends a comment whose unknown command makes
# Doxygen warn, naming the file, so the build fails. It appends at the end so
# the line numbers of every other warning stay right; the source pages show
# the file itself (FILTER_SOURCE_FILES = NO).
cat "$1" || exit 1
if ! grep -Eq '[@\\]file([[:space:]]|$)' "$1"; then
    printf '\n/** @file\n * @this_file_has_no_at_file_comment_add_one_at_the_top\n */\n'
fi
