"""rnn_demo: a character-level RNN language model - the layer from its formula, training, sampling, serving and publishing."""
