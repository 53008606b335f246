#!/usr/bin/env bash
# Open a signal file (format 2) with stock openssl: what `cri-overlap open-signals` checks.
# usage: open-signals-openssl.sh DELIVERY_DIR GMxxxx.key GMxxxx.crt ca.crt OUT_DIR [hub.crt]
#   hub.crt (default: beside ca.crt) pins the signer: only the hub's signatures pass, not those
#   of any other certificate the CA issued; GMxxxx (from the certificate's file name) must be the
#   gemeente the signed manifest names.
#   DELIVERY_DIR holds signals.csv.p7m, signals.manifest.json(.p7s) and identity-keys/ from the hub.
#   Writes OUT_DIR/signals.csv and OUT_DIR/keys/<identity_key>.bin (mode 0600) only when every
#   step passed; any failure stops the script (non-zero exit) and leaves nothing behind.
# Every step is its own command writing to a file: a pipe would hide a failed decrypt.
set -euo pipefail
dir=$1 key=$2 crt=$3 ca=$4 out=$5 hub=${6:-$(dirname "$4")/hub.crt}
gm=$(basename "$crt" .crt)
umask 077
mkdir -p "$out"
work=$(mktemp -d "$out/.open-signals.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. The manifest is the hub's: its signature verifies and signs exactly these bytes.
openssl cms -verify -binary -inform DER -CAfile "$ca" -certfile "$hub" -nointern \
  -in "$dir/signals.manifest.json.p7s" -out "$work/manifest.json"
cmp -s "$work/manifest.json" "$dir/signals.manifest.json"
grep -Eq '"format_version": *2([^0-9]|$)' "$work/manifest.json"
grep -Eq "\"gemeente_code\": *\"$gm\"" "$work/manifest.json"

# 2. Decrypt with the gemeente's key; 3. verify the hub's signature on the CSV.
openssl cms -decrypt -binary -inform DER -in "$dir/signals.csv.p7m" \
  -inkey "$key" -recip "$crt" -out "$work/signed.der"
openssl cms -verify -binary -inform DER -CAfile "$ca" -certfile "$hub" -nointern \
  -in "$work/signed.der" -out "$work/signals.csv"

# 4. The CSV is the one the signed manifest describes.
want=$(sed -n 's/.*"sha256": *"\([0-9a-f]\{64\}\)".*/\1/p' "$work/manifest.json")
got=$(openssl dgst -sha256 -r "$work/signals.csv" | cut -c1-64)
[ -n "$want" ] && [ "$got" = "$want" ]

# 5. Open each identity key file (K, 32 bytes) with the gemeente's key.
mkdir "$work/keys"
for file in "$dir"/identity-keys/*.p7m; do
  [ -e "$file" ] || continue
  openssl cms -decrypt -binary -inform DER -in "$file" \
    -inkey "$key" -recip "$crt" -out "$work/keys/$(basename "$file" .p7m).bin"
  [ "$(wc -c < "$work/keys/$(basename "$file" .p7m).bin")" -eq 32 ]
done

# 6. All checks passed: show whose file it is, then move the results into place.
grep -Eo '"(gemeente_code|run_date|row_count)": *[^,}]*' "$work/manifest.json"
rm -rf "$out/keys"
mv "$work/keys" "$out/keys"
mv "$work/signals.csv" "$out/signals.csv"
