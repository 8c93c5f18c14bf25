"""Page-number pagination: ?page=N&page_size=M (max 200), with count/next/previous/results."""

from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """The one pagination of the API."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
