"""Face crops for the emotion track: five-point alignment (:mod:`mgcli.faces.align`) and
``mg extract-faces`` (:mod:`mgcli.faces.extract`), writing ``faces.h5`` (:mod:`mgcli.io.faces`)."""
