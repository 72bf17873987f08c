# shellcheck shell=bash
# Guest helpers of the systemd-boot scenarios (sdboot-menu, sdboot-pin).

# systemd-boot's vendor GUID (its EFI variables' names end in it).
SD_GUID=4a67b082-0a4c-41cf-b6c7-440b29bb8c4f

# sd_setup: efivarfs (the shell init mounts nothing) and the ESP at /boot/efi.
sd_setup() {
    rm -f /run/udev/control
    mountpoint -q /sys/firmware/efi/efivars ||
        mount -t efivarfs efivarfs /sys/firmware/efi/efivars
    mount /boot/efi
}

# sd_var NAME: the value of systemd-boot's EFI variable NAME (UTF-16 text, ASCII here; the
# first 4 bytes are the attributes), empty when it is not set.
sd_var() {
    local f=/sys/firmware/efi/efivars/$1-$SD_GUID
    [[ -f $f ]] || return 0
    # efivarfs cannot seek: read it whole.
    dd if="$f" bs=4096 status=none | tail -c +5 | tr -d '\000'
    echo
}

# sd_ls: the names in the ESP's loader/entries, sorted.
sd_ls() {
    find /boot/efi/loader/entries -mindepth 1 -maxdepth 1 -printf '%f\n' | sort
}
