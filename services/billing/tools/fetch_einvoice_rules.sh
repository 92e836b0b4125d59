#!/usr/bin/env bash
# Fetch the official e-invoice validation artefacts from Maven Central into var/einvoice-rules/.
#
#   services/billing/tools/fetch_einvoice_rules.sh            # idempotent; no-op when already complete
#   EINVOICE_RULES_DIR=/some/dir services/billing/tools/fetch_einvoice_rules.sh
#   FORCE=1 services/billing/tools/fetch_einvoice_rules.sh    # re-extract
#   MAVEN_REPO_LOCAL=/tmp/m2 …                                 # use another local Maven repository
#
# Needs only mvn, java and unzip. The artefacts are never committed (Apache-2.0 jars by Philip Helger that
# repackage the CEN EN16931 + OpenPeppol compiled Schematron XSLT, ERST's OIOUBL Schematron and the
# OASIS UBL 2.1 XSDs). Versions are pinned so every machine validates against the same rules.
set -euo pipefail

# Peppol BIS Billing 3.0 rules release 2026.05 (CEN-EN16931-UBL + PEPPOL-EN16931-UBL).
PHIVE_PEPPOL_VERSION=4.3.7
PEPPOL_RULES_RELEASE=2026.5
# OIOUBL 2.1 schematron. 1.17.2 is in phive-rules-oioubl >= 4.3.2, which Maven Central does not serve
# here yet; 4.2.3 (newest served) carries 1.17.1. Bump both lines when a newer jar is served.
PHIVE_OIOUBL_VERSION=4.2.3
OIOUBL_RULES_RELEASE=1.17.1
# OASIS UBL 2.1 XSDs and the schemas they import without a schemaLocation.
PH_UBL21_VERSION=10.2.0
PH_XSDS_VERSION=4.1.0
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../../.." && pwd)"
dest="${EINVOICE_RULES_DIR:-$repo_root/var/einvoice-rules}"
stamp="peppol=$PEPPOL_RULES_RELEASE@$PHIVE_PEPPOL_VERSION oioubl=$OIOUBL_RULES_RELEASE@$PHIVE_OIOUBL_VERSION ubl21=$PH_UBL21_VERSION xsds=$PH_XSDS_VERSION"

if [[ "${FORCE:-0}" != 1 && -f "$dest/COMPLETE" && "$(cat "$dest/COMPLETE")" == "$stamp" ]]; then
    echo "einvoice rules already present in $dest ($stamp)"
    exit 0
fi

for tool in mvn java unzip; do
    command -v "$tool" >/dev/null || { echo "fetch_einvoice_rules: '$tool' is required" >&2; exit 1; }
done

mkdir -p "$dest/jars"
rm -f "$dest/COMPLETE"

copy() {  # group:artifact:version → $dest/jars (Maven's own cache in ~/.m2 makes re-runs cheap)
    local log="$dest/jars/mvn.log"
    if ! mvn -B -q -Dstyle.color=never ${MAVEN_REPO_LOCAL:+-Dmaven.repo.local="$MAVEN_REPO_LOCAL"} \
        "$DEPENDENCY_PLUGIN:copy" -Dartifact="$1" -DoutputDirectory="$dest/jars" >"$log" 2>&1; then
        cat "$log" >&2
        echo "fetch_einvoice_rules: could not fetch $1 from Maven Central" >&2
        exit 1
    fi
}
copy "com.helger.phive.rules:phive-rules-peppol:$PHIVE_PEPPOL_VERSION"
copy "com.helger.phive.rules:phive-rules-oioubl:$PHIVE_OIOUBL_VERSION"
copy "com.helger.ubl:ph-ubl21:$PH_UBL21_VERSION"
for xsd in ph-xsds-ccts-cct-schemamodule ph-xsds-xmldsig ph-xsds-xades132 ph-xsds-xades141; do
    copy "com.helger.xsd:$xsd:$PH_XSDS_VERSION"
done

# Extract into a fresh temp dir, then swap in, so a half-finished run never looks complete.
work="$(mktemp -d "$dest/.extract.XXXXXX")"
trap 'rm -rf "$work"' EXIT
jars="$dest/jars"
mkdir -p "$work/peppol" "$work/oioubl" "$work/xsd/ubl21" "$work/xsd/imports"
unzip -q -j -o "$jars/phive-rules-peppol-$PHIVE_PEPPOL_VERSION.jar" \
    "external/schematron/openpeppol/$PEPPOL_RULES_RELEASE/xslt/CEN-EN16931-UBL.xslt" \
    "external/schematron/openpeppol/$PEPPOL_RULES_RELEASE/xslt/PEPPOL-EN16931-UBL.xslt" -d "$work/peppol"
unzip -q -j -o "$jars/phive-rules-oioubl-$PHIVE_OIOUBL_VERSION.jar" \
    "external/schematron/oioubl/$OIOUBL_RULES_RELEASE/xslt/OIOUBL_Invoice_Schematron.xslt" \
    "external/schematron/oioubl/$OIOUBL_RULES_RELEASE/xslt/OIOUBL_CreditNote_Schematron.xslt" -d "$work/oioubl"
unzip -q -o "$jars/ph-ubl21-$PH_UBL21_VERSION.jar" 'external/schemas/ubl21/*' -d "$work/tmp-ubl"
mv "$work/tmp-ubl/external/schemas/ubl21/"* "$work/xsd/ubl21/"
rm -rf "$work/tmp-ubl"
for xsd in ph-xsds-ccts-cct-schemamodule ph-xsds-xmldsig ph-xsds-xades132 ph-xsds-xades141; do
    unzip -q -j -o "$jars/$xsd-$PH_XSDS_VERSION.jar" 'schemas/*.xsd' -d "$work/xsd/imports"
done

cat >"$work/manifest.json" <<JSON
{
  "peppol": {"release": "$PEPPOL_RULES_RELEASE", "artifact": "com.helger.phive.rules:phive-rules-peppol:$PHIVE_PEPPOL_VERSION",
             "cen": "peppol/CEN-EN16931-UBL.xslt", "peppol": "peppol/PEPPOL-EN16931-UBL.xslt"},
  "oioubl": {"release": "$OIOUBL_RULES_RELEASE", "artifact": "com.helger.phive.rules:phive-rules-oioubl:$PHIVE_OIOUBL_VERSION",
             "invoice": "oioubl/OIOUBL_Invoice_Schematron.xslt", "credit_note": "oioubl/OIOUBL_CreditNote_Schematron.xslt"},
  "ubl21_xsd": {"artifact": "com.helger.ubl:ph-ubl21:$PH_UBL21_VERSION", "imports": "com.helger.xsd:ph-xsds-*:$PH_XSDS_VERSION",
                "invoice": "xsd/ubl21/maindoc/UBL-Invoice-2.1.xsd", "credit_note": "xsd/ubl21/maindoc/UBL-CreditNote-2.1.xsd"}
}
JSON

for part in peppol oioubl xsd manifest.json; do
    rm -rf "${dest:?}/$part"
    mv "$work/$part" "$dest/$part"
done
echo "$stamp" >"$dest/COMPLETE"
echo "einvoice rules installed in $dest ($stamp)"
