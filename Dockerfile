# Kattle's operator image: `kattle operator` as a non-root user on a read-only root
# filesystem. Build: docker build -t kattle:dev .  (see docs/container.md)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtual environment with Kattle and its dependencies ---------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The locked dependencies (exact versions, every file's hash checked: `make lock` writes the
# lock), then Kattle's own wheel without resolving anything again, then a check that they fit
# together. The test suite builds this file as written (buildah, hack/images.sh) and runs the
# image in pods (tests/cluster).
RUN python -m venv /opt/kattle/venv
COPY requirements/image.txt ./requirements/image.txt
RUN /opt/kattle/venv/bin/pip install --require-hashes --no-deps -r requirements/image.txt
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m pip wheel --no-deps --wheel-dir /tmp/wheels . \
    && /opt/kattle/venv/bin/pip install --no-deps /tmp/wheels/kattle-*.whl \
    && /opt/kattle/venv/bin/pip check

# -- run: the venv only, no compilers, no pip cache -------------------------------------------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
# Where the sources are, for the image's label: pass --build-arg SOURCE=<repository URL>.
ARG SOURCE=""
LABEL org.opencontainers.image.title="kattle" \
      org.opencontainers.image.description="Rancher Cattle's orchestration model on Kubernetes: resources move through processes run by handler webhooks." \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /opt/kattle /opt/kattle
# Nothing is written at run time but to /tmp (an emptyDir in the chart): no .pyc files,
# unbuffered logs, HOME in /tmp for libraries that look there.
ENV PATH=/opt/kattle/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["kattle"]
CMD ["operator", "--http-address=0.0.0.0:8080"]
