#!/bin/sh
# Renders the mounted Asterisk config (asterisk/conf of this repository, or your copy of it,
# at /etc/sambung/asterisk-conf) into /etc/asterisk and runs Asterisk in the foreground as the
# asterisk user. The same variables as ops/sandbox are substituted and nothing else, so
# Asterisk's own ${EXTEN} and ${CALLERID(all)} stay as they are:
#   SAMBUNG_SANDBOX_ADDR   the address SIP binds to: ASTERISK_BIND_ADDR
#   SAMBUNG_ARI_BIND_ADDR  ARI's own address (http.conf): ASTERISK_ARI_BIND_ADDR, 127.0.0.1
#   SAMBUNG_AMI_BIND_ADDR  AMI's own address (manager.conf): ASTERISK_AMI_BIND_ADDR, 127.0.0.1
#                          Both must be loopback: ARI and AMI carry full call control with
#                          plain-text credentials. To reach ARI from elsewhere, add a TLS
#                          listener in your copy of http.conf (docs/operations.md, "Security").
#   SAMBUNG_ARI_USER, SAMBUNG_AMI_USER, SAMBUNG_ARI_APP   plain environment
#   SAMBUNG_ARI_PASSWORD, SAMBUNG_AMI_SECRET              from the compose secrets
#                                                         /run/secrets/ari_password, ami_secret
#   SAMBUNG_SIP_PASSWORD_<NAME>  from each compose secret /run/secrets/sip_password_<name>
#                          (the desk phones' and the trunk's; ./make-secrets generates them),
#                          e.g. sip_password_agent1001 -> SAMBUNG_SIP_PASSWORD_AGENT1001
set -eu

src=/etc/sambung/asterisk-conf
[ -d "$src" ] || { echo "sambung-asterisk: $src is not mounted" >&2; exit 2; }

secret() {  # $1: file; the value without its trailing newline
  [ -r "$1" ] || { echo "sambung-asterisk: missing secret $1" >&2; exit 2; }
  tr -d '\n' <"$1"
}

loopback() {  # $1: an IPv4 address; true when it is 127.x.y.z
  case "$1" in 127.*) return 0 ;; *) return 1 ;; esac
}

export SAMBUNG_SANDBOX_ADDR="${ASTERISK_BIND_ADDR:-127.0.0.1}"
export SAMBUNG_ARI_BIND_ADDR="${ASTERISK_ARI_BIND_ADDR:-127.0.0.1}"
export SAMBUNG_AMI_BIND_ADDR="${ASTERISK_AMI_BIND_ADDR:-127.0.0.1}"
for pair in "ASTERISK_ARI_BIND_ADDR=$SAMBUNG_ARI_BIND_ADDR" "ASTERISK_AMI_BIND_ADDR=$SAMBUNG_AMI_BIND_ADDR"; do
  loopback "${pair#*=}" || {
    echo "sambung-asterisk: ${pair}: ARI and AMI stay on loopback (127.x.y.z); reach ARI from elsewhere only over TLS (docs/operations.md, Security)" >&2
    exit 2
  }
done
export SAMBUNG_ARI_USER="${SAMBUNG_ARI_USER:-sambung}"
export SAMBUNG_AMI_USER="${SAMBUNG_AMI_USER:-sambung}"
export SAMBUNG_ARI_APP="${SAMBUNG_ARI_APP:-sambung}"
SAMBUNG_ARI_PASSWORD=$(secret /run/secrets/ari_password)
SAMBUNG_AMI_SECRET=$(secret /run/secrets/ami_secret)
export SAMBUNG_ARI_PASSWORD SAMBUNG_AMI_SECRET
if [ "$SAMBUNG_ARI_PASSWORD" = "$SAMBUNG_AMI_SECRET" ]; then
  echo "sambung-asterisk: secrets ari_password and ami_secret are the same; make them differ" >&2
  exit 2
fi
vars='${SAMBUNG_SANDBOX_ADDR} ${SAMBUNG_ARI_BIND_ADDR} ${SAMBUNG_AMI_BIND_ADDR} ${SAMBUNG_ARI_USER} ${SAMBUNG_AMI_USER} ${SAMBUNG_ARI_APP} ${SAMBUNG_ARI_PASSWORD} ${SAMBUNG_AMI_SECRET}'
for f in /run/secrets/sip_password_*; do
  [ -e "$f" ] || continue
  name=$(basename "$f" | sed 's/^sip_password_//' | tr 'a-z-' 'A-Z_')
  case "$name" in *[!A-Z0-9_]*|'') echo "sambung-asterisk: $f: use letters, digits, '_' or '-' in the name" >&2; exit 2 ;; esac
  value=$(secret "$f")
  export "SAMBUNG_SIP_PASSWORD_$name=$value"
  vars="$vars \${SAMBUNG_SIP_PASSWORD_$name}"
done

for f in "$src"/*.conf; do
  name=$(basename "$f")
  # A ${SAMBUNG_...} this script does not know is a typo or a missing secret: refuse, as
  # ops/sandbox does, rather than start a phone with an empty password.
  unknown=$(grep -o '\${SAMBUNG_[A-Z0-9_]*}' "$f" | sort -u | while read -r v; do
    case " $vars " in *" $v "*) ;; *) echo "$v" ;; esac
  done)
  if [ -n "$unknown" ]; then
    echo "sambung-asterisk: $name: unknown variable(s) or missing secret(s) $unknown" >&2
    exit 2
  fi
  envsubst "$vars" <"$f" >"/etc/asterisk/.$name.new"
  chown asterisk:asterisk "/etc/asterisk/.$name.new"
  chmod 640 "/etc/asterisk/.$name.new"
  mv -f "/etc/asterisk/.$name.new" "/etc/asterisk/$name"
done

exec /usr/sbin/asterisk -f -U asterisk -G asterisk "$@"
