"""Pure rules of the notifications service.

What emails exist, what each needs, how a send is keyed and how it is retried.
"""
