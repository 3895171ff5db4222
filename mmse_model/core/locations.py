"""Storage locations: a local (or NFS) path, or a URI such as `s3://bucket/prefix`.

Every command that takes a storage or experiment location takes either. For S3 and
S3-compatible servers (MinIO, SeaweedFS, Ceph) the endpoint, region and credentials come
from the environment of each process (`AWS_ENDPOINT_URL`, `AWS_DEFAULT_REGION`,
`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or a credentials file, an instance role on
AWS); `?endpoint_override=...&scheme=http` in the URI works too. Credentials are refused in
a location: a location is written into results, Tune's experiment state, logs and the Ray
dashboard, and a key in it would be too.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from mmse_model.core.errors import ConfigError

# Query parameters (pyarrow's S3 URI options among them) that carry a secret.
_SECRET_WORDS = ("key", "secret", "token", "password", "credential", "sig")


def is_uri(location: str) -> bool:
    return "://" in str(location)


def _secret_names(query: str) -> list[str]:
    return [name for name, _ in parse_qsl(query, keep_blank_values=True)
            if any(word in name.lower() for word in _SECRET_WORDS)]


def redact(location: str) -> str:
    """`location` without user info or secret query parameters: what may be shown or logged."""
    if not is_uri(location):
        return location
    parts = urlsplit(location)
    secret = set(_secret_names(parts.query))
    query = "&".join(f"{n}={v}" if v else n for n, v in parse_qsl(parts.query, keep_blank_values=True)
                     if n not in secret)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=netloc, query=query).geturl()


def check_location(location: str, key: str) -> str:
    """`location` unchanged, or a one-line ConfigError naming `key` when it holds
    credentials (user info or a secret query parameter). The value itself is never echoed."""
    if not is_uri(location):
        return location
    parts = urlsplit(location)
    secret = _secret_names(parts.query)
    if "@" in parts.netloc or secret:
        what = f"a {secret[0]!r} parameter" if secret else "user:password@"
        raise ConfigError(
            f"{key}: the URI holds credentials ({what}); they would be written into results, logs and "
            "the Ray dashboard. Give them in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "AWS_SHARED_CREDENTIALS_FILE, or an instance role) and keep the URI to s3://bucket/prefix"
        )
    return location
