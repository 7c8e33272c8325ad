#!/bin/sh
# The image's entrypoint: prepare the certificates the service expects, then become the service (exec: it
# gets the signals, the stop signal included) with the image's arguments (CMD) or the ones given to docker run.
set -eu
if [ ! -e /certs/depot.pem ]; then
  /install/self-cert/install-cert.sh /certs
fi
exec /depot "$@"
