#!/bin/sh
# Copy the bundled self-signed certificate into the certificate directory ($1), readable by its owner only.
set -eu
cp /install/self-cert/depot.pem "$1/depot.pem"
chmod 600 "$1/depot.pem"
