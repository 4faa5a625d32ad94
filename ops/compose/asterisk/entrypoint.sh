#!/bin/sh
# Renders the mounted Asterisk config (asterisk/conf of this repository, or your copy of it,
# at /etc/sambung/asterisk-conf) into /etc/asterisk and runs Asterisk in the foreground as the
# asterisk user. The same variables as ops/sandbox are substituted and nothing else, so
# Asterisk's own ${EXTEN} and ${CALLERID(all)} stay as they are:
#   SAMBUNG_SANDBOX_ADDR  the address SIP, ARI (http.conf) and AMI bind to: ASTERISK_BIND_ADDR
#   SAMBUNG_ARI_USER, SAMBUNG_AMI_USER, SAMBUNG_ARI_APP   plain environment
#   SAMBUNG_ARI_PASSWORD, SAMBUNG_AMI_SECRET              from the compose secrets
#                                                         /run/secrets/ari_password, ami_secret
set -eu

src=/etc/sambung/asterisk-conf
[ -d "$src" ] || { echo "sambung-asterisk: $src is not mounted" >&2; exit 2; }

secret() {  # $1: file; the value without its trailing newline
  [ -r "$1" ] || { echo "sambung-asterisk: missing secret $1" >&2; exit 2; }
  tr -d '\n' <"$1"
}

export SAMBUNG_SANDBOX_ADDR="${ASTERISK_BIND_ADDR:-127.0.0.1}"
export SAMBUNG_ARI_USER="${SAMBUNG_ARI_USER:-sambung}"
export SAMBUNG_AMI_USER="${SAMBUNG_AMI_USER:-sambung}"
export SAMBUNG_ARI_APP="${SAMBUNG_ARI_APP:-sambung}"
SAMBUNG_ARI_PASSWORD=$(secret /run/secrets/ari_password)
SAMBUNG_AMI_SECRET=$(secret /run/secrets/ami_secret)
export SAMBUNG_ARI_PASSWORD SAMBUNG_AMI_SECRET
vars='${SAMBUNG_SANDBOX_ADDR} ${SAMBUNG_ARI_USER} ${SAMBUNG_AMI_USER} ${SAMBUNG_ARI_APP} ${SAMBUNG_ARI_PASSWORD} ${SAMBUNG_AMI_SECRET}'

for f in "$src"/*.conf; do
  name=$(basename "$f")
  # A ${SAMBUNG_...} this script does not know is a typo: refuse, as ops/sandbox does.
  unknown=$(grep -o '\${SAMBUNG_[A-Z0-9_]*}' "$f" | sort -u | while read -r v; do
    case " $vars " in *" $v "*) ;; *) echo "$v" ;; esac
  done)
  if [ -n "$unknown" ]; then
    echo "sambung-asterisk: $name: unknown variable(s) $unknown" >&2
    exit 2
  fi
  envsubst "$vars" <"$f" >"/etc/asterisk/.$name.new"
  chown asterisk:asterisk "/etc/asterisk/.$name.new"
  chmod 640 "/etc/asterisk/.$name.new"
  mv -f "/etc/asterisk/.$name.new" "/etc/asterisk/$name"
done

exec /usr/sbin/asterisk -f -U asterisk -G asterisk "$@"
