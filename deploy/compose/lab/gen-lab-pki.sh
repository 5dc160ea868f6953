#!/bin/sh
# One-shot set-up of the compose lab (the `certs` service): a CA, a certificate for each
# relay (server and client use: the relays use it for mutual TLS), users files with known
# lab passwords, and the rendezvous directory where bob publishes his path.
#
# Idempotent: what exists is kept (so the relays keep their certificates across
# `docker compose up` runs); `docker compose down -v` starts from scratch. Everything is
# owned by uid/gid 10001, the user of the msrp-relay image.
#
# Lab only: the passwords are fixed and written in clear next to the CA.
set -eu

OUT=${LAB_OUT:-/out}          # volumes are mounted below this directory
DOMAIN=${LAB_DOMAIN:-msrp.test}
OWNER=${LAB_OWNER:-10001:10001}
DAYS=${LAB_DAYS:-825}

umask 077
CA_DIR=$OUT/ca
CLIENTS=$OUT/clients
mkdir -p "$CA_DIR" "$CLIENTS" "$OUT/relay-a" "$OUT/relay-b" "$OUT/rendezvous"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- the lab CA -----------------------------------------------------------------------
if [ ! -s "$CA_DIR/ca.key" ] || [ ! -s "$CA_DIR/ca.pem" ]; then
    echo "certs: creating the lab CA"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$CA_DIR/ca.key"
    cat > "$tmp/ca.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = msrp-relay lab CA
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF
    openssl req -x509 -new -key "$CA_DIR/ca.key" -config "$tmp/ca.cnf" \
        -days 3650 -sha256 -out "$CA_DIR/ca.pem"
fi

# --- one certificate per relay ----------------------------------------------------------
leaf() {
    name=$1                    # relay-a
    host=$name.$DOMAIN         # relay-a.msrp.test
    dir=$OUT/$name
    if [ -s "$dir/relay.key" ] && [ -s "$dir/relay.pem" ] \
        && openssl verify -CAfile "$CA_DIR/ca.pem" "$dir/relay.pem" >/dev/null 2>&1; then
        return 0
    fi
    echo "certs: issuing the certificate of $host"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/relay.key"
    openssl req -new -key "$dir/relay.key" -subj "/CN=$host" -out "$tmp/$name.csr"
    cat > "$tmp/$name.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:$host
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EXT
    openssl x509 -req -in "$tmp/$name.csr" -CA "$CA_DIR/ca.pem" -CAkey "$CA_DIR/ca.key" \
        -CAcreateserial -CAserial "$CA_DIR/ca.srl" -days "$DAYS" -sha256 \
        -extfile "$tmp/$name.ext" -out "$dir/relay.pem" 2>/dev/null
}
leaf relay-a
leaf relay-b

# --- users and their lab passwords ------------------------------------------------------
# htdigest line: user:realm:md5("user:realm:password"); the realm is the relay's hostname
# (auth.realm defaults to relay.hostname).
user() {
    name=$1 relay=$2 password=$3
    realm=$relay.$DOMAIN
    printf '%s\n' "$password" > "$CLIENTS/$name.password"
    ha1=$(printf '%s' "$name:$realm:$password" | openssl md5 -r | cut -d' ' -f1)
    printf '%s:%s:%s\n' "$name" "$realm" "$ha1" > "$OUT/$relay/users.htdigest"
}
user alice relay-a alice-lab-password
user bob relay-b bob-lab-password

# Each relay and the clients trust the lab CA.
for d in relay-a relay-b clients; do
    cp "$CA_DIR/ca.pem" "$OUT/$d/ca.pem"
done

chown -R "$OWNER" "$OUT/relay-a" "$OUT/relay-b" "$OUT/clients" "$OUT/rendezvous"
chmod 0600 "$OUT/relay-a/relay.key" "$OUT/relay-b/relay.key" "$CLIENTS"/*.password \
    "$OUT/relay-a/users.htdigest" "$OUT/relay-b/users.htdigest"
chmod 0644 "$OUT"/relay-?/relay.pem "$OUT"/*/ca.pem
chmod 0755 "$OUT/relay-a" "$OUT/relay-b" "$OUT/clients"
chmod 0700 "$OUT/rendezvous"

echo "certs: lab PKI ready (CA: $(openssl x509 -in "$CA_DIR/ca.pem" -noout -subject))"
