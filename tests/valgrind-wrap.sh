#!/bin/sh
# meson test --wrapper: run a unit test under valgrind; any error fails it.
exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --track-origins=yes "$@"
