// Starts GraphiQL on the endpoint that served the page. A file, not an inline
// script, so that the page's Content-Security-Policy allows no inline code.
"use strict";
const container = document.getElementById("graphiql");
document.body.style.margin = "0";
container.style.height = "100vh";
const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
ReactDOM.createRoot(container).render(React.createElement(GraphiQL, { fetcher }));
