export const GET = () => new Response('public');
