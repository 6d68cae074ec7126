# Table 3a: the transformer takes 2D joint coordinates (+ visibility) instead of heatmaps.
_base_ = ['./pretrain_amass.py']

input_mode = 'coords'
model = dict(data_preprocessor=dict(input_mode=input_mode), head=dict(input_mode=input_mode))
