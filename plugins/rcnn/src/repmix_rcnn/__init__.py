"""repmix-rcnn: the recurrent convolutional neural network (RCNN) for text of Lai, Xu, Liu and Zhao (AAAI 2015),
chapter of Siwei Lai's thesis "Word and Document Embeddings based on Neural Network Approaches" (2016).

One component, the ``rcnn`` encoder: every word is represented with its left and
right recurrent contexts, x_i = [c_l(w_i); e(w_i); c_r(w_i)], y_i = tanh(W x_i + b),
and the document is the element-wise max over i.
"""

__version__ = "1.0.0"
