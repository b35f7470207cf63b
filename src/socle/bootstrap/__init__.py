"""The trusted OS image, bootstrapped from the distribution's archive with mmdebstrap.

- :mod:`~socle.bootstrap.spec`: the checked bootstrap spec;
- :mod:`~socle.bootstrap.sources`: the host's (or the mirror's) apt sources;
- :mod:`~socle.bootstrap.mmdebstrap`: the run, and what a failure means;
- :mod:`~socle.bootstrap.image`: the image config the rootfs is written with.
"""
