"""The ``yct`` application: the command line over every package below it.

Packages import in one direction only: ``yolo`` (the detector, training and compression; no
Ray, MLflow or Optuna), then ``search_spaces`` (the YAML and its Optuna space), then
``trainables`` (Ray Tune and MLflow), then ``analysis`` (fronts from trial records), then
``yct``. ``tests/test_import_graph.py`` holds them to it.
"""
