#!/usr/bin/env python3
"""Writes an OCI image layout (image-spec 1.0) holding one multi-platform
image: index.json names (by `org.opencontainers.image.ref.name`) an image
index whose manifests carry their `platform`, one single-layer image per
platform, each with an OCI config (architecture, os, variant if given,
rootfs.diff_ids, Env, Labels) and a gzip layer.

    oci-layout.py OUT --ref latest --env PATH=... --label k=v \
        linux/amd64=docker-archive:busybox.tar linux/arm64=layer:rootfs.tar

An image's source is `layer:FILE` (an uncompressed rootfs tar) or
`docker-archive:FILE` (a `docker save` of a one-layer image: its layer,
byte for byte, so the diff_id is the engine image's). Only the standard
library; deterministic for the same inputs (gzip and config times are 0).
Used by .ci/fixtures.sh for the multi-platform test base.
"""

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EPOCH = "1970-01-01T00:00:00Z"
CHUNK = 1 << 20


class Layout:
    def __init__(self, root):
        self.root = root
        self.blobs = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.blobs, exist_ok=True)

    def put_file(self, path):
        """Moves a finished file into the blobs; its digest and size."""
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(CHUNK), b""):
                digest.update(chunk)
        size = os.path.getsize(path)
        os.replace(path, os.path.join(self.blobs, digest.hexdigest()))
        return "sha256:" + digest.hexdigest(), size

    def put_json(self, value, media_type, **extra):
        """Stores a JSON document; its descriptor."""
        data = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        hexdigest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.blobs, hexdigest), "wb") as file:
            file.write(data)
        return dict(mediaType=media_type, digest="sha256:" + hexdigest, size=len(data), **extra)

    def put_layer(self, stream):
        """Gzips an uncompressed layer stream into the blobs; (diff_id, descriptor)."""
        diff = hashlib.sha256()
        fd, partial = tempfile.mkstemp(dir=self.blobs, prefix=".partial-")
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                diff.update(chunk)
                out.write(chunk)
        digest, size = self.put_file(partial)
        return "sha256:" + diff.hexdigest(), dict(mediaType=LAYER, digest=digest, size=size)


def open_layer(source):
    """An uncompressed layer stream from `layer:FILE` or `docker-archive:FILE`."""
    kind, _, path = source.partition(":")
    if kind == "layer":
        return open(path, "rb")
    if kind == "docker-archive":
        archive = tarfile.open(path)
        manifest = json.load(archive.extractfile("manifest.json"))
        if len(manifest) != 1 or len(manifest[0]["Layers"]) != 1:
            sys.exit(f"oci-layout: {path}: expected one image of one layer, got {manifest}")
        return archive.extractfile(manifest[0]["Layers"][0])
    sys.exit(f"oci-layout: unknown source {source!r} (layer:FILE or docker-archive:FILE)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the layout directory (must not exist)")
    parser.add_argument("--ref", default="latest", help="the name index.json gives the index")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for each config")
    parser.add_argument("--label", action="append", default=[], help="KEY=VALUE for each config")
    parser.add_argument("images", nargs="+", metavar="OS/ARCH[/VARIANT]=SOURCE")
    args = parser.parse_args()
    if os.path.exists(args.out):
        sys.exit(f"oci-layout: {args.out} exists")
    labels = dict(label.split("=", 1) for label in args.label)

    work = args.out + ".partial"
    shutil.rmtree(work, ignore_errors=True)
    layout = Layout(work)
    entries = []
    for image in args.images:
        platform_name, _, source = image.partition("=")
        parts = platform_name.split("/")
        if len(parts) not in (2, 3) or not source:
            sys.exit(f"oci-layout: {image!r} is not OS/ARCH[/VARIANT]=SOURCE")
        platform = {"os": parts[0], "architecture": parts[1]}
        if len(parts) == 3:
            platform["variant"] = parts[2]
        with open_layer(source) as stream:
            diff_id, layer = layout.put_layer(stream)
        config = dict(
            platform,
            created=EPOCH,
            config={"Env": args.env, "Labels": labels},
            rootfs={"type": "layers", "diff_ids": [diff_id]},
            history=[{"created": EPOCH, "created_by": f"arca .ci/oci-layout.py from {os.path.basename(source)}"}],
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": layout.put_json(config, CONFIG),
            "layers": [layer],
        }
        entries.append(layout.put_json(manifest, MANIFEST, platform=platform))
        print(f"oci-layout: {platform_name}: layer {layer['digest']} ({layer['size']} bytes gzip), diff_id {diff_id}")
    index = layout.put_json(
        {"schemaVersion": 2, "mediaType": INDEX, "manifests": entries},
        INDEX,
        annotations={"org.opencontainers.image.ref.name": args.ref},
    )
    with open(os.path.join(work, "index.json"), "w") as file:
        json.dump({"schemaVersion": 2, "mediaType": INDEX, "manifests": [index]}, file)
    with open(os.path.join(work, "oci-layout"), "w") as file:
        json.dump({"imageLayoutVersion": "1.0.0"}, file)
    os.rename(work, args.out)
    print(f"oci-layout: {args.out}:{args.ref} = index {index['digest']}")


if __name__ == "__main__":
    main()
