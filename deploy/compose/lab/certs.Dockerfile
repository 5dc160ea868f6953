# Image of the lab's one-shot `certs` service: just openssl and a shell. The script it runs
# (gen-lab-pki.sh) is mounted from deploy/compose/lab. It runs as root (the image default)
# because it hands the files it makes to uid 10001, the user of the msrp-relay image.
FROM alpine:3.20
# Lab tooling: the version of the day is fine, hence unpinned.
# hadolint ignore=DL3018
RUN apk add --no-cache openssl
ENTRYPOINT []
CMD ["/bin/sh", "/lab/gen-lab-pki.sh"]
