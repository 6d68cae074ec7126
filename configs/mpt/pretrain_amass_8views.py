# Table 9 / Appendix B: 4 Human3.6M S1 cameras + 4 interpolated views.
_base_ = ['./pretrain_amass.py']

num_views = 8
train_dataloader = dict(dataset=dict(num_views=num_views, pipeline=[
    dict(type='RandomVirtualCamera', num_views=num_views, input_size={{_base_.heatmap_size}},
         random_view=True),
    dict(type='MaskedHeatmapModeling'),
    dict(type='PackMeshInputs'),
]))
