# Table 9: pre-training with 1 virtual camera (evaluation keeps the base's 4 views).
_base_ = ['./pretrain_amass.py']

num_views = 1
train_dataloader = dict(dataset=dict(num_views=num_views, pipeline=[
    dict(type='RandomVirtualCamera', num_views=num_views, input_size={{_base_.heatmap_size}},
         random_view=True),
    dict(type='MaskedHeatmapModeling'),
    dict(type='PackMeshInputs'),
]))
