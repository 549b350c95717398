# shellcheck shell=sh disable=SC2034
# (ROOT, MFROOT, IMPL, RV are for the script that sources this.)
# Sourced by the real-Metaflow checks (check_real_metaflow_cloud.sh, check_real_metaflow_gc.sh):
# the datastore STORE (local, s3 or azure) for Metaflow and cas, in WORK. Sets ROOT
# (cas's root), MFROOT (Metaflow's sysroot value), IMPL (the storage class to import),
# RV (the variable naming Metaflow's root), and stops what it started on exit.
# s3: starts its own S3 server (tests/s3/s3server.sh) unless CAS_TEST_S3_ENDPOINT and
# the AWS keys name one. azure: starts azurite (tests/azure/azurite.sh) and a stand-in
# for the instance metadata service; Metaflow (DefaultAzureCredential) and cas both
# authenticate as a managed identity, with bearer tokens azurite checks over HTTPS.
export USERNAME="${USERNAME:-cas_cloud_check}" METAFLOW_DEFAULT_METADATA=local METAFLOW_HOME="$WORK/mfhome"
case "$STORE" in
s3)
  if [ -z "${CAS_TEST_S3_ENDPOINT:-}" ]; then
    sh "$REPO/tests/s3/s3server.sh" start "$WORK/s3"
    trap 'sh "$REPO/tests/s3/s3server.sh" stop "$WORK/s3"' EXIT
    # shellcheck disable=SC1091
    . "$WORK/s3/env"
  fi
  BUCKET=mfreal$$
  ROOT="s3://$BUCKET/metaflow" MFROOT="$ROOT" IMPL="s3_storage import S3Storage as Impl"
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1
  export METAFLOW_DEFAULT_DATASTORE=s3 METAFLOW_DATASTORE_SYSROOT_S3="$ROOT"
  export METAFLOW_S3_ENDPOINT_URL="$CAS_TEST_S3_ENDPOINT"
  $PY -c "import boto3,os; boto3.client('s3', endpoint_url=os.environ['METAFLOW_S3_ENDPOINT_URL']).create_bucket(Bucket='$BUCKET')"
  ;;
azure)
  sh "$REPO/tests/azure/azurite.sh" start "$WORK/az"
  $PY "$HERE/imds_standin.py" > "$WORK/imds.port" &
  IMDS_PID=$!
  trap 'kill $IMDS_PID 2>/dev/null; sh "$REPO/tests/azure/azurite.sh" stop "$WORK/az"' EXIT
  # shellcheck disable=SC1091
  . "$WORK/az/env"
  while [ ! -s "$WORK/imds.port" ]; do sleep 0.1; done
  CONTAINER=mfreal$$
  ROOT="azure://$CONTAINER/metaflow" MFROOT="$CONTAINER/metaflow" IMPL="azure_storage import AzureStorage as Impl"
  $PY -c "
import os
from azure.storage.blob import BlobServiceClient
BlobServiceClient(account_url=os.environ['CAS_TEST_AZURE_OAUTH_ENDPOINT'], connection_verify=os.environ['CAS_TEST_AZURE_CA'],
                  credential={'account_name': os.environ['AZURE_STORAGE_ACCOUNT'], 'account_key': os.environ['AZURE_STORAGE_KEY']}
                  ).create_container('$CONTAINER')"
  unset AZURE_STORAGE_KEY AZURE_STORAGE_ACCOUNT  # from here on, a managed identity's tokens only
  export METAFLOW_DEFAULT_DATASTORE=azure METAFLOW_DATASTORE_SYSROOT_AZURE="$MFROOT"
  export METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT="$CAS_TEST_AZURE_OAUTH_ENDPOINT"
  IMDS_PORT=$(cat "$WORK/imds.port")
  export AZURE_POD_IDENTITY_AUTHORITY_HOST="http://127.0.0.1:$IMDS_PORT"
  export REQUESTS_CA_BUNDLE="$CAS_TEST_AZURE_CA"
  ;;
local)
  ROOT="$WORK/.metaflow" MFROOT="$WORK" IMPL="local_storage import LocalStorage as Impl"
  export METAFLOW_DEFAULT_DATASTORE=local METAFLOW_DATASTORE_SYSROOT_LOCAL="$MFROOT"
  ;;
*) echo "usage: $0 local|s3|azure" >&2; exit 2 ;;
esac
case "$STORE" in s3) RV=METAFLOW_DATASTORE_SYSROOT_S3 ;; azure) RV=METAFLOW_DATASTORE_SYSROOT_AZURE ;; *) RV=METAFLOW_DATASTORE_SYSROOT_LOCAL ;; esac
