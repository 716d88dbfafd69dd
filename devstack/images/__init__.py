"""The images the charts deploy, built here from their own Dockerfiles and run here, without a registry.

`tools` (buildah, mmdebstrap and the project's image storage), `base` (the local stand-in for the Python base
image), `catalog` (the images and their build contexts), `dockerfile` (reading a Dockerfile and its context),
`pip_access` (how a build's pip reaches the index), `build` (content-keyed builds), `containers` (running an
image with buildah as the chart runs it), `cli` (`python -m devstack images ...`).
"""
