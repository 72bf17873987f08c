#!/bin/sh
# Test harness (99norandom): remove the random-number device nodes before udevd starts.
rm -f /dev/random /dev/urandom
if [ -e /dev/random ] || [ -e /dev/urandom ]; then
    echo "<3>norandom: could not remove /dev/random or /dev/urandom" > /dev/kmsg
else
    echo "<5>norandom: removed /dev/random and /dev/urandom before udev" > /dev/kmsg
fi
