#!/bin/sh
# Test harness (99norandom): after the initqueue (rewind's job), record which random-number
# nodes exist and whether rewind-early ran (its marker /run/rewind/early.done).
present=''
for n in random urandom; do
    [ -e "/dev/$n" ] && present="$present $n"
done
ran=no
[ -e /run/rewind/early.done ] && ran=yes
echo "<5>norandom: at pre-mount: random nodes present=[${present# }] rewind-early ran=$ran" > /dev/kmsg
