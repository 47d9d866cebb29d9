#!/usr/bin/env bash
# Installs the machine-level programs the local stack runs on, from Debian's packages,
# when they are missing: Java 17 and Maven (Kafka, the registry), ClickHouse, Prometheus,
# poppler-utils and zbar-tools (purchase order documents read back by the tests).
# Chromium and chromedriver (the ordering page's browser test).
set -euo pipefail

need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v clickhouse-server >/dev/null || [ -x /usr/sbin/clickhouse-server ] || need+=(clickhouse-server)
command -v prometheus >/dev/null || need+=(prometheus)
command -v python3.11 >/dev/null || need+=(python3.11 python3.11-venv)
# purchase order documents: pdftotext/pdftoppm read them back in the tests, zbarimg reads the
# barcode, DejaVu prints names beyond Latin-1
command -v pdftotext >/dev/null || need+=(poppler-utils)
command -v zbarimg >/dev/null || need+=(zbar-tools)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# the ordering page's browser test: headless Chromium and its WebDriver
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing programs: ${need[*]}; install them as root: apt-get install ${need[*]}" >&2
  exit 1
fi
echo "[setup] installing Debian packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts packaged services on install where it can; the stack runs its own.
for svc in clickhouse-server prometheus; do
  if command -v service >/dev/null; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
