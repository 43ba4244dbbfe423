export default defineEventHandler(() => 'public');
